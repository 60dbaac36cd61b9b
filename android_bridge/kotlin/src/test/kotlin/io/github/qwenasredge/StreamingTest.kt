package io.github.qwenasredge

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test
import java.io.File

/**
 * The Kotlin streaming session against every update of the Python runtime's (its reference mode)
 * on the same blocks, in both Kotlin modes: the bounded one (kept encoder windows and KV prefix)
 * must give the reference mode's tokens, as it does in Python.
 */
class StreamingTest {
    private val fixtures = Fixtures.dir
    private val streams by lazy { Fixtures.recordings("stream") }

    @Test
    fun updatesEqualThePythonRuntimes() {
        assertTrue("no stream fixtures", streams.size >= 2)
        val wrong = ArrayList<String>()
        var updates = 0
        for (recording in streams) {
            val audio = recording.audio
            QwenAsr.open(recording.bundle, QwenAsrOptions(verify = false)).use { asr ->
                for (case in recording.cases) for (mode in listOf("bounded", "reference")) {
                    val session = asr.stream(case["language"] as String?, case["context"] as String, StreamingOptions(mode = mode))
                    assertEquals(mode, session.mode)
                    val samples = (case["samples"] as Number).toInt()
                    val block = (case["block"] as Number).toInt()
                    val got = ArrayList<StreamUpdate>()
                    for (start in 0 until samples step block) got += session.feed(audio.copyOfRange(start, minOf(samples, start + block)))
                    got += session.finish()
                    @Suppress("UNCHECKED_CAST")
                    val want = case["updates"] as List<Map<String, Any?>>
                    val where = "${recording.name}/${case["name"]} ($mode)"
                    if (got.size != want.size) wrong += "$where: ${got.size} updates != ${want.size}"
                    for ((i, pair) in got.zip(want).withIndex()) {
                        updates++
                        val (g, w) = pair
                        for ((key, value) in listOf("committed" to g.committed, "tentative" to g.tentative, "language" to g.language,
                            "new_committed" to g.newCommitted, "is_final" to g.isFinal)) {
                            if (value != w[key]) wrong += "$where update $i: $key '$value' != '${w[key]}'"
                        }
                    }
                }
            }
        }
        if (wrong.isNotEmpty()) fail("${wrong.size} mismatches in $updates updates:\n" + wrong.take(20).joinToString("\n"))
    }

    @Test
    fun boundedModeComputesOnlyWhatChanged() {
        QwenAsr.open(File(fixtures, "bundles/demo-ort"), QwenAsrOptions(verify = false)).use { asr ->
            val audio = Fixtures.floats(File(fixtures, "stream/demo-ort.pcm"))
            asr.stream().use { session ->
                for (start in 0 until 16000 * 20 step 16000) session.feed(audio.copyOfRange(start, start + 16000))
                // 20 s = 2000 frames: the two completed 8 s windows are kept, only the open one is
                // encoded; the system turn and their audio stay in the decoder's cache.
                assertTrue("encoded ${session.lastEncodedFrames} frames", session.lastEncodedFrames in 1..800)
                assertTrue("reused ${session.lastReusedPositions} positions", session.lastReusedPositions > 2 * 104)
            }
        }
    }

    @Test
    fun committedTextOnlyGrowsAndFinishEnds() {
        QwenAsr.open(File(fixtures, "bundles/demo-ort"), QwenAsrOptions(verify = false)).use { asr ->
            val audio = Fixtures.floats(File(fixtures, "stream/demo-ort.pcm"))
            val session = asr.stream()
            var last = ""
            for (start in 0 until 16000 * 10 step 1234) {
                for (u in session.feed(audio.copyOfRange(start, minOf(audio.size, start + 1234)))) {
                    assertTrue("committed shrank: '$last' -> '${u.committed}'", u.committed.startsWith(last))
                    last = u.committed
                }
            }
            val final = session.finish()
            assertTrue(final.isFinal && final.tentative.isEmpty() && final.committed.startsWith(last))
            try {
                session.feed(FloatArray(10))
                fail("feed after finish")
            } catch (e: IllegalStateException) {
                assertTrue(e.message!!.contains("finished"))
            }
            try {
                asr.stream().feed(FloatArray(10), 44100)
                fail("another rate")
            } catch (e: AudioException) {
                assertTrue(e.message!!.contains("44100 Hz"))
            }
            assertEquals("", asr.stream().finish().committed) // nothing heard, nothing said
        }
    }
}
