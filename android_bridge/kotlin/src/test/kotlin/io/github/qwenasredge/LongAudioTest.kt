package io.github.qwenasredge

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

/**
 * Recordings longer than one chunk: cut where the Python runtime cuts them, each chunk decoded to
 * its tokens, and the transcript assembled as `Transcript.of` does (fixtures.write_long).
 */
class LongAudioTest {
    private val recordings by lazy { Fixtures.recordings("long") }

    @Test
    fun transcriptsEqualThePythonRuntimes() {
        assertTrue("no long-audio fixtures", recordings.size >= 2)
        val wrong = ArrayList<String>()
        var segments = 0
        for (recording in recordings) {
            val audio = recording.audio
            QwenAsr.open(recording.bundle, QwenAsrOptions(verify = false)).use { asr ->
                for (case in recording.cases) {
                    val got = asr.transcribe(audio, 16000, case["language"] as String?)
                    val where = "${recording.name}/${case["name"]}"
                    @Suppress("UNCHECKED_CAST")
                    val want = case["segments"] as List<Map<String, Any?>>
                    if (want.size < 2) wrong += "$where: the fixture has ${want.size} chunk(s), not several"
                    if (got.segments.size != want.size) wrong += "$where: ${got.segments.size} segments != ${want.size}"
                    for ((i, pair) in got.segments.zip(want).withIndex()) {
                        segments++
                        val (g, w) = pair
                        if (g.start != (w["start"] as Number).toDouble() || g.end != (w["end"] as Number).toDouble()) {
                            wrong += "$where segment $i: ${g.start}-${g.end} s != ${w["start"]}-${w["end"]} s"
                        }
                        if (!g.tokens.contentEquals(Fixtures.ints(w["tokens"]))) wrong += "$where segment $i: tokens differ"
                        if (g.text != w["text"]) wrong += "$where segment $i: text '${g.text}' != '${w["text"]}'"
                        if (g.language != w["language"]) wrong += "$where segment $i: language '${g.language}' != '${w["language"]}'"
                        if (g.finishReason != w["finish_reason"]) wrong += "$where segment $i: ${g.finishReason} != ${w["finish_reason"]}"
                    }
                    if (got.text != case["text"]) wrong += "$where: text '${got.text}' != '${case["text"]}'"
                    if (got.language != case["detected_language"]) wrong += "$where: language '${got.language}' != '${case["detected_language"]}'"
                    if (got.languages != case["languages"]) wrong += "$where: languages ${got.languages} != ${case["languages"]}"
                    assertEquals(audio.size / 16000.0, got.durationSeconds, 0.0)
                    assertEquals(got.segments.sumOf { it.tokens.size }, got.tokens.size)
                }
            }
        }
        if (wrong.isNotEmpty()) fail("${wrong.size} mismatches in $segments segments:\n" + wrong.take(20).joinToString("\n"))
    }

    @Test
    fun chunksCoverTheRecordingWithinTheirLimits() {
        val rate = 16000
        val noise = java.util.Random(7)
        for (seconds in listOf(0.5, 30.0, 30.0 + 1.0 / rate, 31.0, 59.5, 61.0, 200.0)) {
            val wav = FloatArray((seconds * rate).toInt()) { (noise.nextGaussian() * 0.1).toFloat() }
            val chunks = Chunking.split(wav, rate, 30.0)
            assertEquals("starts at 0 ($seconds s)", 0, chunks.first().first)
            assertEquals("ends at the end ($seconds s)", wav.size - 1, chunks.last().last)
            for ((a, b) in chunks.zipWithNext()) assertEquals("no gap or overlap ($seconds s)", a.last + 1, b.first)
            for (c in chunks) assertTrue("chunk of ${c.count()} samples ($seconds s)", c.count() <= 30 * rate)
            if (chunks.size > 1) for (c in chunks) assertTrue("chunk of ${c.count()} samples ($seconds s)", c.count() >= rate)
            if (seconds <= 30.0) assertEquals(1, chunks.size)
        }
        // A silent stretch inside the search window is where the cut goes.
        val wav = FloatArray(40 * rate) { 0.3f }
        for (i in 27 * rate until 27 * rate + 3200) wav[i] = 0f
        val cut = Chunking.split(wav, rate, 30.0)[0].last + 1
        assertTrue("cut at $cut", cut in 27 * rate until 27 * rate + 3200)
    }
}
