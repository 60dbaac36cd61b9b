package io.github.qwenasredge.text

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test
import java.io.File

class JsonTest {
    private fun error(text: String): JsonException = try {
        Json.parse(text)
        throw AssertionError("parsed ${TextFixtures.show(text)}")
    } catch (e: JsonException) {
        e
    }

    @Test
    fun values() {
        val v = Json.parseObject("""{"b": 1, "a": [true, false, null, -2, 3.5, 1e2, "x"], "c": {}}""")
        assertEquals(listOf("b", "a", "c"), v.keys.toList()) // document order
        assertEquals(1L, v["b"])
        assertEquals(listOf(true, false, null, -2L, 3.5, 100.0, "x"), v["a"])
        assertEquals(emptyMap<String, Any?>(), v["c"])
        assertEquals(9223372036854775807L, Json.parse("9223372036854775807"))
        assertEquals(-9223372036854775807L - 1, Json.parse("-9223372036854775808"))
        assertEquals(9.223372036854775808E18, Json.parse("9223372036854775808")) // beyond Long: a Double
        assertEquals(-0.0, Json.parse("-0.0"))
        assertEquals(0L, Json.parse("-0"))
        assertEquals(2L, Json.parseObject("""{"k": 1, "k": 2}""")["k"]) // the last, as Python's json
        assertEquals(" \t\n", Json.parse("\" \\t\\n\""))
    }

    @Test
    fun escapes() {
        assertEquals("\"\\/\b\u000C\n\r\t", Json.parse("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""))
        assertEquals("\uD83D\uDE00", Json.parse("\"\\ud83d\\ude00\""))
        assertEquals("\u00e9\u4e2d", Json.parse("\"\\u00E9\\u4e2D\""))
        assertEquals("\uD800", Json.parse("\"\\ud800\"")) // a lone surrogate is kept, as Python's json
        assertEquals("😀 é", Json.parse("\"😀 é\""))
    }

    @Test
    fun errors() {
        for (bad in listOf(
            "", " ", "{", "[", "[1,]", "{\"a\":1,}", "{'a':1}", "{a:1}", "01", "-", "1.", ".5", "1e", "+1",
            "NaN", "Infinity", "tru", "nul", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"", "\"a\nb\"",
            "[1 2]", "{\"a\" 1}", "1 2", "[1]]", "// c\n1", "\"\\", "{\"a\":}", "[,1]", "\u00a01",
        )) error(bad)
        val e = error("{\"a\": [1, 2,\n  x]}")
        assertEquals(15, e.position)
        assertTrue(e.message!!, e.message!!.contains("line 2, column 3"))
        assertTrue(error("[1,]").message!!.contains("offset 3"))
        val deep = "[".repeat(Json.MAX_DEPTH + 1) + "]".repeat(Json.MAX_DEPTH + 1)
        assertTrue(error(deep).message!!.contains("nesting"))
        Json.parse("[".repeat(Json.MAX_DEPTH) + "]".repeat(Json.MAX_DEPTH))
    }

    @Test
    fun accessors() {
        val v = Json.parseObject("""{"s": "x", "n": 3, "d": 1.5, "b": true, "l": [1, 2], "o": {"k": null}}""")
        assertEquals("x", v.string("s"))
        assertEquals(3, v.int("n"))
        assertEquals(1.5, v.double("d"), 0.0)
        assertEquals(true, v.bool("b"))
        assertEquals(listOf(1, 2), v.list("l").toIntArrayStrict().toList())
        assertEquals(null, v.obj("o").stringOrNull("k"))
        for (wrong in listOf({ v.string("n") }, { v.int("s") }, { v.obj("l") }, { v.list("missing") })) {
            try {
                wrong()
                fail("no error")
            } catch (e: JsonException) {
                assertTrue(e.message!!, e.message!!.startsWith("'"))
            }
        }
    }

    @Test
    fun pythonCases() {
        TextFixtures.checkAll("json", TextFixtures.list("json")) { c ->
            val got = Json.parse(c.string("text"))
            if (got == c["value"]) null else "${TextFixtures.show(c.string("text"))}: got $got, Python ${c["value"]}"
        }
    }

    @Test
    fun speed() {
        val text = File(TextFixtures.dir, "cases.json").readText()
        Json.parse(text)
        val t0 = System.nanoTime()
        val reps = 5
        repeat(reps) { Json.parse(text) }
        val ms = (System.nanoTime() - t0) / 1e6 / reps
        println("json: cases.json (%.1f MB) parses in %.1f ms".format(text.length / 1e6, ms))
        assertTrue("parsing took $ms ms", ms < 2000)
    }
}
