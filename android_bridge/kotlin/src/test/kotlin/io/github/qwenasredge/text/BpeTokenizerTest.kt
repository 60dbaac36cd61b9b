package io.github.qwenasredge.text

import io.github.qwenasredge.text.TextFixtures.show
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test
import java.io.File
import java.nio.ByteBuffer
import java.nio.charset.CodingErrorAction

class BpeTokenizerTest {
    companion object {
        private fun load(dir: File): BpeTokenizer =
            BpeTokenizer.fromManifestSection(dir, Json.parseObject(File(dir, "manifest_tokenizer.json").readText()))

        val qwen: BpeTokenizer by lazy {
            val t0 = System.nanoTime()
            val tok = load(TextFixtures.dir)
            println("tokenizer: the Qwen3 vocabulary loads in %.0f ms (first load, cold JVM)".format((System.nanoTime() - t0) / 1e6))
            tok
        }
        val demo: BpeTokenizer by lazy { load(File(TextFixtures.dir, "demo")) }
        val variant: BpeTokenizer by lazy { load(File(TextFixtures.dir, "variant")) }
    }

    private fun checkEncode(what: String, tok: BpeTokenizer, cases: List<Map<String, Any?>>) =
        TextFixtures.checkAll(what, cases) { c ->
            val want = c.list("ids").toIntArrayStrict()
            val got = tok.encode(c.string("text"))
            if (got.contentEquals(want)) null
            else "${show(c.string("text"))}: got ${got.toList()}, tokenizers ${want.toList()}"
        }

    private fun checkDecode(what: String, tok: BpeTokenizer, cases: List<Map<String, Any?>>) =
        TextFixtures.checkAll(what, cases) { c ->
            val ids = c.list("ids").toIntArrayStrict()
            val got = tok.decode(ids, c.bool("skip"))
            if (got == c.string("text")) null
            else "ids ${ids.toList()} skip ${c["skip"]}: got ${show(got)}, tokenizers ${show(c.string("text"))}"
        }

    @Test fun encodeQwen3() = checkEncode("encode (Qwen3)", qwen, TextFixtures.list("encode"))
    @Test fun decodeQwen3() = checkDecode("decode (Qwen3)", qwen, TextFixtures.list("decode"))
    @Test fun encodeDemo() = checkEncode("encode (demo)", demo, TextFixtures.list("demo_encode"))
    @Test fun decodeDemo() = checkDecode("decode (demo)", demo, TextFixtures.list("demo_decode"))
    @Test fun encodeVariant() = checkEncode("encode (demo + added)", variant, TextFixtures.list("variant_encode"))
    @Test fun decodeVariant() = checkDecode("decode (demo + added)", variant, TextFixtures.list("variant_decode"))

    @Test
    fun lookups() {
        assertEquals(151644, qwen.tokenToId("<|im_start|>"))
        assertEquals("<|im_start|>", qwen.idToToken(151644))
        assertEquals(9707, qwen.tokenToId("Hello"))
        assertEquals("Hello", qwen.idToToken(9707))
        assertEquals("Ġworld", qwen.idToToken(qwen.encode(" world").single()))
        assertNull(qwen.tokenToId("no such token"))
        assertNull(qwen.idToToken(-1))
        assertNull(qwen.idToToken(10_000_000))
        assertEquals("<|endoftext|>", qwen.addedStrings.first())
        assertTrue("<asr_text>" in qwen.addedStrings)
        assertEquals(151643, qwen.modelVocabSize)
    }

    @Test
    fun roundTrip() {
        val text = "language English<asr_text>Hello, wörld! 你好 😀\r\n\t x"
        assertEquals(text, qwen.decode(qwen.encode(text), skipSpecialTokens = false))
        assertArrayEquals(intArrayOf(), qwen.encode(""))
        assertEquals("", qwen.decode(intArrayOf()))
    }

    @Test
    fun refusesOtherTokenizers() {
        val section = Json.parseObject(File(TextFixtures.dir, "manifest_tokenizer.json").readText())
        for ((key, value) in listOf("normalizer" to "NFKC", "pre_tokenizer_pattern" to "\\s+|\\S+")) {
            try {
                BpeTokenizer.fromManifestSection(TextFixtures.dir, LinkedHashMap(section).apply { put(key, value) })
                fail("accepted $key $value")
            } catch (e: IllegalArgumentException) {
                assertTrue(e.message!!, e.message!!.startsWith("unsupported"))
            }
        }
    }

    @Test
    fun utf8Lossy() {
        fun bytes(vararg b: Int) = ByteArray(b.size) { b[it].toByte() }
        // The Unicode standard's recommended practice (maximal subparts), as Rust and Python decode.
        assertEquals("\uFFFD\uFFFD\uFFFD", Utf8Lossy.decode(bytes(0xED, 0xA0, 0x80))) // a surrogate
        assertEquals("\uFFFD\uFFFD", Utf8Lossy.decode(bytes(0xE0, 0x80)))
        assertEquals("\uFFFD", Utf8Lossy.decode(bytes(0xE4, 0xB8))) // truncated
        assertEquals("\uFFFDa", Utf8Lossy.decode(bytes(0xF0, 0x9F, 0x98, 0x61)))
        assertEquals("\uFFFD\uFFFD\uFFFD\uFFFD", Utf8Lossy.decode(bytes(0xF4, 0x90, 0x80, 0x80))) // > U+10FFFF
        assertEquals("\uFFFD\uFFFD", Utf8Lossy.decode(bytes(0xC0, 0xAF))) // overlong
        assertEquals("\uFFFD\uFFFD", Utf8Lossy.decode(bytes(0xFE, 0xFF)))
        assertEquals("😀中é", Utf8Lossy.decode("😀中é".toByteArray()))
        // Java's own decoder, compared on every 1- to 3-byte sequence from a set of interesting bytes.
        val interesting = intArrayOf(0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
            0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF)
        var differ = 0
        var example = ""
        for (a in interesting) for (b in interesting) for (c in interesting) for (d in interesting) {
            val bs = bytes(a, b, c, d)
            val java = Charsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPLACE)
                .onUnmappableCharacter(CodingErrorAction.REPLACE).decode(ByteBuffer.wrap(bs)).toString()
            if (java != Utf8Lossy.decode(bs)) {
                if (differ++ == 0) example = "%02x %02x %02x %02x: Java ${show(java)}, Rust ${show(Utf8Lossy.decode(bs))}".format(a, b, c, d)
            }
        }
        println("utf8: Java's decoder differs from from_utf8_lossy on $differ of ${interesting.size.let { it * it * it * it }} 4-byte sequences${if (differ > 0) "; e.g. $example" else ""}")
    }

    @Test
    fun speed() {
        val t0 = System.nanoTime()
        load(TextFixtures.dir)
        val loadMs = (System.nanoTime() - t0) / 1e6
        val texts = TextFixtures.list("encode").map { it.string("text") }
        val corpus = texts.joinToString(" ").repeat(4)
        val chars = corpus.length
        // A fresh tokenizer per run: the cache starts empty, as for new text.
        val fresh = load(TextFixtures.dir)
        val t1 = System.nanoTime()
        val ids = fresh.encode(corpus)
        val coldMs = (System.nanoTime() - t1) / 1e6
        val t2 = System.nanoTime()
        repeat(5) { fresh.encode(corpus) }
        val warmMs = (System.nanoTime() - t2) / 1e6 / 5
        val t3 = System.nanoTime()
        repeat(5) { fresh.decode(ids) }
        val decodeMs = (System.nanoTime() - t3) / 1e6 / 5
        println("tokenizer: load %.0f ms (warm JVM); encode %d chars -> %d ids: %.1f ms first, %.1f ms cached; decode %.1f ms"
            .format(loadMs, chars, ids.size, coldMs, warmMs, decodeMs))
        assertTrue("loading took $loadMs ms", loadMs < 3000)
    }
}
