package io.github.qwenasredge

import io.github.qwenasredge.text.Json
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test
import java.io.File
import java.nio.file.Files
import kotlin.math.abs

/** The Kotlin library against the Python runtime's golden vectors, on every fixture bundle. */
class QwenAsrTest {
    private val fixtures = Fixtures.dir
    private val bundles = File(fixtures, "bundles").listFiles()!!.filter { File(it, "manifest.json").isFile }.sortedBy { it.name }

    @Suppress("UNCHECKED_CAST")
    private fun golden(bundle: File): Map<String, Any?> = Json.parse(File(bundle, "golden/golden.json").readText()) as Map<String, Any?>

    @Test
    fun fixturesHoldEveryKindOfBundle() {
        val names = bundles.map { it.name }
        for (kind in listOf("demo-ort", "demo-onnx", "tiny-fp32-ort", "tiny-fp32-onnx", "tiny-int4-ort")) {
            assertTrue("missing fixture bundle $kind in $names", kind in names)
        }
    }

    @Test
    fun tokensAndTextEqualThePythonRuntime() {
        var cases = 0
        val wrong = ArrayList<String>()
        for (dir in bundles) {
            QwenAsr.open(dir).use { asr ->
                @Suppress("UNCHECKED_CAST")
                for (case in golden(dir)["cases"] as List<Map<String, Any?>>) {
                    cases++
                    val pcm = Fixtures.floats(File(dir, case["pcm"] as String))
                    val language = case["language"] as String?
                    val context = case["context"] as String
                    val got = asr.transcribe(pcm, (case["sample_rate"] as Number).toInt(), language, context)
                    val where = "${dir.name}/${case["name"]}"
                    if (!got.promptIds.contentEquals(Fixtures.ints(case["prompt_ids"]))) wrong += "$where: prompt ids differ"
                    if (!got.tokens.contentEquals(Fixtures.ints(case["tokens"]))) {
                        wrong += "$where: tokens ${got.tokens.toList()} != ${Fixtures.ints(case["tokens"]).toList()}"
                    }
                    if (got.text != case["text"]) wrong += "$where: text '${got.text}' != '${case["text"]}'"
                    if (got.language != case["detected_language"]) wrong += "$where: language '${got.language}' != '${case["detected_language"]}'"
                    if (got.finishReason != case["finish_reason"]) wrong += "$where: finish ${got.finishReason} != ${case["finish_reason"]}"
                }
            }
        }
        assertTrue("no golden cases", cases >= bundles.size)
        if (wrong.isNotEmpty()) fail("${wrong.size} mismatches in $cases cases:\n" + wrong.joinToString("\n"))
    }

    @Test
    fun demoExamplesSayWhatWasSpoken() {
        QwenAsr.open(File(fixtures, "bundles/demo-ort")).use { asr ->
            val pcm = Fixtures.floats(File(fixtures, "bundles/demo-ort/golden/english.pcm"))
            val got = asr.transcribe(pcm, 16000)
            assertEquals("English", got.language)
            assertEquals("Tomorrow I will go shopping.", got.text)
            assertEquals("stop", got.finishReason)
        }
    }

    @Test
    fun preprocessorGraphEqualsTheRuntimesMel() {
        for (dir in bundles) {
            @Suppress("UNCHECKED_CAST")
            val mel = golden(dir)["mel"] as Map<String, Any?>
            val want = Fixtures.floats(File(dir, mel["file"] as String))
            QwenAsr.open(dir, QwenAsrOptions(verify = false)).use { asr ->
                val got = asr.logMel(Fixtures.floats(File(dir, mel["pcm"] as String)))
                assertEquals("${dir.name}: mel size", want.size, got.size)
                val worst = want.indices.maxOf { abs(want[it] - got[it]) }
                assertTrue("${dir.name}: mel differs by $worst", worst <= 1e-4f)
            }
        }
    }

    private fun <T> assertThrowsMessage(kind: Class<T>, vararg parts: String, block: () -> Unit) where T : Throwable {
        try {
            block()
        } catch (e: Throwable) {
            if (!kind.isInstance(e)) throw AssertionError("expected ${kind.simpleName}, got $e", e)
            val message = e.message ?: ""
            for (part in parts) assertTrue("'$message' lacks '$part'", message.contains(part))
            assertTrue("message is not one line: $message", '\n' !in message)
            return
        }
        fail("expected ${kind.simpleName} with ${parts.toList()}")
    }

    private val demo get() = File(fixtures, "bundles/demo-ort")

    @Test
    fun badAudioGivesClearErrors() {
        QwenAsr.open(demo).use { asr ->
            val second = FloatArray(16000) { (0.1 * Math.sin(it * 0.05)).toFloat() }
            assertThrowsMessage(AudioException::class.java, "44100 Hz", "16000 Hz") { asr.transcribe(second, 44100) }
            assertThrowsMessage(AudioException::class.java, "empty") { asr.transcribe(FloatArray(0), 16000) }
            assertThrowsMessage(AudioException::class.java, "too short", "200 samples") { asr.transcribe(FloatArray(200), 16000) }
            assertThrowsMessage(AudioException::class.java, "NaN") { asr.transcribe(second.copyOf().also { it[5] = Float.NaN }, 16000) }
            assertThrowsMessage(IllegalArgumentException::class.java, "unsupported language 'Klingon'", "English (en), German (de)") {
                asr.transcribe(second, 16000, language = "Klingon")
            }
            assertThrowsMessage(IllegalArgumentException::class.java, "control tokens", "<|im_end|>") {
                asr.transcribe(second, 16000, context = "hello <|im_end|>")
            }
            // Silence is not an error; louder-than-full-scale audio is normalised, not refused.
            asr.transcribe(FloatArray(16000), 16000)
            asr.transcribe(FloatArray(16000) { 3f * second[it] }, 16000, language = "en")
        }
    }

    private fun copyOf(bundle: File): File {
        val dir = Files.createTempDirectory("qwenasr-bundle").toFile()
        bundle.copyRecursively(dir, overwrite = true)
        return dir
    }

    @Test
    fun badBundlesGiveClearErrors() {
        val missing = File(fixtures, "no-such-bundle")
        assertThrowsMessage(BundleException::class.java, "no-such-bundle", "not a folder") { QwenAsr.open(missing) }
        assertThrowsMessage(BundleException::class.java, "no manifest.json") { QwenAsr.open(fixtures) }
        val dir = copyOf(demo)
        try {
            val manifest = File(dir, "manifest.json")
            val text = manifest.readText()
            manifest.writeText(text.replace("\"format_version\": 1", "\"format_version\": 99"))
            assertThrowsMessage(BundleException::class.java, "format version 99") { QwenAsr.open(dir) }
            manifest.writeText("{not json")
            assertThrowsMessage(BundleException::class.java, "not valid JSON") { QwenAsr.open(dir) }
            manifest.writeText(text)
            val decoder = File(dir, "decoder.ort")
            val bytes = decoder.readBytes()
            bytes[bytes.size / 2] = (bytes[bytes.size / 2] + 1).toByte()
            decoder.writeBytes(bytes)
            assertThrowsMessage(BundleException::class.java, "decoder.ort", "sha256") { QwenAsr.open(dir) }
            decoder.delete()
            assertThrowsMessage(BundleException::class.java, "missing decoder.ort") { QwenAsr.open(dir) }
            val bundle = MobileBundle(demo)
            assertThrowsMessage(BundleException::class.java, "needs onnxruntime", "1.0.0") { bundle.checkRuntime("1.0.0") }
            File(dir, "decoder.ort").writeBytes(File(demo, "decoder.ort").readBytes())
            // Values a hand edit breaks are refused at open, not as a division by zero later.
            manifest.writeText(text.replace("\"chunk_frames\": 100", "\"chunk_frames\": 0"))
            assertThrowsMessage(BundleException::class.java, "encoder.chunk_frames") { QwenAsr.open(dir) }
            manifest.writeText(text.replace("\"name\": \"input_features\"", "\"name\": \"mel\""))
            assertThrowsMessage(BundleException::class.java, "encoder.ort has inputs", "[mel, feature_lens]") { QwenAsr.open(dir) }
            // A truncated graph that skips the hash check is named with onnxruntime's reason.
            manifest.writeText(text)
            File(dir, "decoder.ort").writeBytes(File(demo, "decoder.ort").readBytes().copyOf(1000))
            assertThrowsMessage(BundleException::class.java, "cannot load decoder.ort") { QwenAsr.open(dir, QwenAsrOptions(verify = false)) }
            // Golden vectors are optional: an app may ship the bundle without them.
            File(dir, "decoder.ort").writeBytes(File(demo, "decoder.ort").readBytes())
            File(dir, "golden").deleteRecursively()
            QwenAsr.open(dir).close()
        } finally {
            dir.deleteRecursively()
        }
    }

    @Test
    fun languagesByNameOrCode() {
        QwenAsr.open(demo).use { asr ->
            assertEquals("English", asr.normalizeLanguage("en"))
            assertEquals("German", asr.normalizeLanguage(" gERMAN "))
            assertEquals("German", asr.normalizeLanguage("de-DE"))
            assertEquals("English", asr.normalizeLanguage("en_GB"))
            assertThrowsMessage(IllegalArgumentException::class.java, "'auto' (leave the language out to detect it)") {
                asr.normalizeLanguage("auto")
            }
            val pcm = Fixtures.floats(File(demo, "golden/german.pcm"))
            assertEquals(asr.transcribe(pcm, 16000, "German").tokens.toList(), asr.transcribe(pcm, 16000, "de").tokens.toList())
            // "" detects, as the Python runtime's `if language:`
            assertEquals(asr.transcribe(pcm, 16000).tokens.toList(), asr.transcribe(pcm, 16000, "").tokens.toList())
        }
    }

    @Test
    fun closeWhileTranscribingWaitsInsteadOfCrashing() {
        val pcm = Fixtures.floats(File(demo, "golden/german.pcm"))
        for (delayMs in listOf(0L, 5L, 20L, 40L, 80L)) {
            val asr = QwenAsr.open(demo, QwenAsrOptions(verify = false))
            val stream = asr.stream()
            var failure: Throwable? = null
            val worker = Thread {
                try {
                    repeat(3) { asr.transcribe(pcm, 16000); stream.feed(pcm) }
                } catch (e: IllegalStateException) {
                    if (e.message != "this QwenAsr is closed") failure = e
                } catch (e: Throwable) {
                    failure = e
                }
            }
            worker.start()
            Thread.sleep(delayMs)
            asr.close() // waits for a call in progress; later calls throw
            worker.join()
            failure?.let { throw AssertionError("after close at $delayMs ms: $it", it) }
            assertThrowsMessage(IllegalStateException::class.java, "this QwenAsr is closed") { asr.transcribe(pcm, 16000) }
            assertThrowsMessage(IllegalStateException::class.java, "this QwenAsr is closed") { stream.feed(pcm) }
            assertThrowsMessage(IllegalStateException::class.java, "this QwenAsr is closed") { asr.stream() }
            asr.close()
        }
    }

    @Test
    fun concurrentTranscriptionsGiveEachTheirOwnTokens() {
        QwenAsr.open(demo, QwenAsrOptions(verify = false)).use { asr ->
            val clips = listOf("english", "german").map { Fixtures.floats(File(demo, "golden/$it.pcm")) }
            val want = clips.map { asr.transcribe(it, 16000).tokens.toList() }
            val wrong = java.util.concurrent.atomic.AtomicInteger()
            val threads = (0 until 4).map { t ->
                Thread { repeat(3) { if (asr.transcribe(clips[t % 2], 16000).tokens.toList() != want[t % 2]) wrong.incrementAndGet() } }
            }
            threads.forEach { it.start() }
            threads.forEach { it.join() }
            assertEquals(0, wrong.get())
        }
    }

    @Test
    fun promptWithoutContextEqualsTheTokenizersEncoding() {
        for (dir in bundles) {
            QwenAsr.open(dir, QwenAsrOptions(verify = false)).use { asr ->
                val b = asr.bundle
                for (language in listOf(null) + b.languages) {
                    val suffix = language?.let { b.languageSuffix.replace("{language}", it) } ?: ""
                    val encoded = asr.tokenizer.encode(b.beforeContext + b.afterContext + suffix)
                    assertArrayEquals("${dir.name} $language", encoded, asr.promptIds(1, "", language))
                }
            }
        }
    }
}
