package io.github.qwenasredge

import java.io.File
import java.nio.ByteBuffer
import java.nio.ByteOrder

/**
 * bench/android_jvm.py's JVM side: `BenchMain BUNDLE PCM REPEATS THREADS` opens the bundle,
 * transcribes the raw float32 16 kHz PCM file REPEATS times and prints one JSON line: load time,
 * per run the wall, encoder, prefill and decode-step seconds, the tokens, and the process's peak
 * resident memory (VmHWM) and the anonymous and file-backed parts of its resident memory at the end.
 */
object BenchMain {
    @JvmStatic
    fun main(args: Array<String>) {
        if (args[0] == "stream") return stream(args.drop(1))
        val (bundle, pcmFile, repeats, threads) = args
        val map = args.getOrNull(4) != "copy"
        val bytes = ByteBuffer.wrap(File(pcmFile).readBytes()).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer()
        val pcm = FloatArray(bytes.remaining()).also { bytes.get(it) }
        var start = System.nanoTime()
        val asr = QwenAsr.open(File(bundle), QwenAsrOptions(threads = threads.toInt(), verify = false, mapGraphs = map))
        val load = (System.nanoTime() - start) / 1e9
        val runs = ArrayList<String>()
        var tokens = IntArray(0)
        asr.use {
            repeat(repeats.toInt()) {
                start = System.nanoTime()
                val t = asr.transcribe(pcm, 16000)
                val wall = (System.nanoTime() - start) / 1e9
                tokens = t.tokens
                runs += """{"wall_s": $wall, "encode_s": ${t.encodeSeconds}, "prefill_s": ${t.prefillSeconds}, """ +
                    """"steps": ${t.stepSeconds.size}, "steps_s": ${t.stepSeconds.sum()}}"""
            }
        }
        val status = File("/proc/self/status").readLines()
        fun kb(key: String) = status.firstOrNull { it.startsWith("$key:") }?.split(Regex("\\s+"))?.getOrNull(1) ?: "null"
        println(
            """{"load_s": $load, "runs": [${runs.joinToString(", ")}], "tokens": ${tokens.toList()}, """ +
                """"vm_hwm_kb": ${kb("VmHWM")}, "rss_anon_kb": ${kb("RssAnon")}, "rss_file_kb": ${kb("RssFile")}}""",
        )
    }

    private fun stream(args: List<String>) {
        val (bundle, pcmFile, threads) = args
        val bytes = ByteBuffer.wrap(File(pcmFile).readBytes()).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer()
        val pcm = FloatArray(bytes.remaining()).also { bytes.get(it) }
        QwenAsr.open(File(bundle), QwenAsrOptions(threads = threads.toInt(), verify = false)).use { asr ->
            val session = asr.stream(options = StreamingOptions(maxNewTokens = 12))
            val updates = ArrayList<String>()
            for (start in 0 until pcm.size step 32000) {
                for (u in session.feed(pcm.copyOfRange(start, minOf(pcm.size, start + 32000)))) {
                    updates += """{"end": ${u.end}, "compute_s": ${u.computeSeconds}}"""
                }
            }
            session.finish()
            println("""{"updates": [${updates.joinToString(", ")}]}""")
        }
    }
}
