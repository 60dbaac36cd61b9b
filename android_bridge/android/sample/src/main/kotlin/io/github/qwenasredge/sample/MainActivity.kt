package io.github.qwenasredge.sample

import android.Manifest
import android.app.Activity
import android.content.pm.PackageManager
import android.media.AudioFormat
import android.media.AudioRecord
import android.media.MediaRecorder
import android.os.Bundle
import android.widget.Button
import android.widget.LinearLayout
import android.widget.TextView
import io.github.qwenasredge.QwenAsr
import java.io.File
import kotlin.concurrent.thread

/**
 * Records the microphone while the button is held (at most 2 minutes, 16 kHz mono float, which
 * QwenAsr takes as it is) and shows the transcript; one recording at a time (the button is off
 * while one is transcribed). The mobile bundle is read from this app's
 * external files folder, where `adb push BUNDLE /sdcard/Android/data/io.github.qwenasredge.sample/files/bundle`
 * puts it.
 */
class MainActivity : Activity() {
    private var asr: QwenAsr? = null
    private lateinit var status: TextView
    private lateinit var button: Button
    @Volatile private var recording = false

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        status = TextView(this).apply { textSize = 18f; setPadding(32, 32, 32, 32) }
        button = Button(this).apply { text = "Hold to talk"; isEnabled = false }
        setContentView(LinearLayout(this).apply { orientation = LinearLayout.VERTICAL; addView(button); addView(status) })
        if (checkSelfPermission(Manifest.permission.RECORD_AUDIO) != PackageManager.PERMISSION_GRANTED) {
            requestPermissions(arrayOf(Manifest.permission.RECORD_AUDIO), 1)
        }
        val bundle = File(getExternalFilesDir(null), "bundle")
        status.text = "Loading $bundle ..."
        thread {
            val opened = try {
                QwenAsr.open(bundle)
            } catch (e: Exception) {
                runOnUiThread { status.text = "Cannot open the bundle: ${e.message}" }
                return@thread
            }
            asr = opened
            runOnUiThread { status.text = "Ready (${opened.languages.size} languages)"; button.isEnabled = true }
        }
        button.setOnTouchListener { _, event ->
            when (event.actionMasked) {
                android.view.MotionEvent.ACTION_DOWN -> startRecording()
                android.view.MotionEvent.ACTION_UP, android.view.MotionEvent.ACTION_CANCEL -> recording = false
            }
            false
        }
    }

    private fun startRecording() {
        val model = asr ?: return
        if (checkSelfPermission(Manifest.permission.RECORD_AUDIO) != PackageManager.PERMISSION_GRANTED) return
        recording = true
        button.isEnabled = false // until this recording is transcribed
        status.text = "Listening ..."
        thread {
            val rate = model.sampleRate
            val minBuffer = AudioRecord.getMinBufferSize(rate, AudioFormat.CHANNEL_IN_MONO, AudioFormat.ENCODING_PCM_FLOAT)
            val recorder = AudioRecord(MediaRecorder.AudioSource.VOICE_RECOGNITION, rate, AudioFormat.CHANNEL_IN_MONO,
                AudioFormat.ENCODING_PCM_FLOAT, maxOf(minBuffer, rate / 5 * 4))
            val audio = FloatArray(rate * 120) // 7.7 MB; QwenAsr cuts it in 30 s chunks
            var n = 0
            recorder.startRecording()
            while (recording && n < audio.size) {
                val read = recorder.read(audio, n, minOf(rate / 10, audio.size - n), AudioRecord.READ_BLOCKING)
                if (read <= 0) break
                n += read
            }
            recorder.stop()
            recorder.release()
            runOnUiThread { status.text = "Transcribing %.1f s ...".format(n.toDouble() / rate) }
            val message = try {
                val result = model.transcribe(audio.copyOf(n), rate)
                "[${result.language}] ${result.text}\n\n%.2f s of audio in %.2f s".format(
                    result.durationSeconds, result.encodeSeconds + result.prefillSeconds + result.stepSeconds.sum())
            } catch (e: Exception) { // QwenAsrException, OrtException, or closed while the activity ends
                e.message ?: e.toString()
            }
            runOnUiThread { status.text = message; button.isEnabled = true }
        }
    }

    override fun onDestroy() {
        recording = false
        // close() waits for a transcription in progress: not on the UI thread.
        asr?.let { model -> thread { model.close() } }
        super.onDestroy()
    }
}
