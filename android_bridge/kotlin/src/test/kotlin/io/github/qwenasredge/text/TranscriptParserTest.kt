package io.github.qwenasredge.text

import io.github.qwenasredge.text.TextFixtures.show
import org.junit.Assert.assertEquals
import org.junit.Test

class TranscriptParserTest {
    private val p = TranscriptParser

    @Test
    fun wellFormed() {
        assertEquals(ParsedOutput("English", "Hello world."), p.parseTranscript("language English<asr_text>Hello world."))
        assertEquals(ParsedOutput("", "", false), p.parseTranscript("langu"))
        assertEquals(ParsedOutput("Chinese", "你好"), p.parseTranscript("你好", "Chinese"))
        assertEquals(ParsedOutput("English", "Hello. Again."),
            p.parseTranscript("language English<asr_text>Hello. language English<asr_text>Again."))
        assertEquals(ParsedOutput("English", "Hello."), p.parseTranscript("language English<asr_text>Hello.langu", truncated = true))
        assertEquals(ParsedOutput("English", "this language"),
            p.parseTranscript("language English<asr_text>this language", truncated = true))
    }

    @Test
    fun pythonStrings() {
        assertEquals("a", p.pyStrip("\u001c\u00a0a\u3000\u2028"))
        assertEquals(listOf("a", "b", "", "c"), p.pySplitLines("a\r\nb\u2028\u000bc"))
        assertEquals("ha", p.fixRepetitions("ha".repeat(20)))
        assertEquals("😀", p.fixRepetitions("😀".repeat(21))) // code points, not UTF-16 units
        assertEquals("a中b x", p.joinTexts(listOf(" a ", "", "中", "b", "x")))
        assertEquals("𠀀𠀀", p.joinTexts(listOf("𠀀", "𠀀")))
    }

    @Test
    fun pythonCases() {
        val markups = TextFixtures.cases.list("markups").map { m -> (m as List<*>).map { it as String } }
        TextFixtures.checkAll("parse", TextFixtures.list("parse")) { c ->
            val raw = c.string("raw")
            val forced = c.stringOrNull("forced")
            val truncated = c.bool("truncated")
            val markup = markups[c.int("markup")]
            val what = "${show(raw)} forced=$forced truncated=$truncated markup=${c["markup"]}"
            val stripped = p.stripControlTokens(raw, markup)
            val output = p.parseOutput(raw, forced).toList()
            val fixed = p.fixRepetitions(raw)
            val got = p.parseTranscript(raw, forced, truncated, markup)
            val want = ParsedOutput(c.string("language"), c.string("text"), c.bool("reached_text"))
            when {
                stripped != c.string("stripped") -> "$what: strip_control_tokens ${show(stripped)}, Python ${show(c.string("stripped"))}"
                output != c.list("output") -> "$what: parse_output ${output.map { show(it) }}, Python ${c.list("output").map { show(it as String) }}"
                fixed != c.string("fixed") -> "$what: fix_repetitions ${show(fixed)}, Python ${show(c.string("fixed"))}"
                got != want -> "$what: got (${show(got.language)}, ${show(got.text)}, ${got.reachedText}), " +
                    "Python (${show(want.language)}, ${show(want.text)}, ${want.reachedText})"
                else -> null
            }
        }
    }

    @Test
    fun joinCases() {
        TextFixtures.checkAll("join_texts", TextFixtures.list("join")) { c ->
            val texts = c.list("texts").map { it as String }
            val got = p.joinTexts(texts)
            if (got == c.string("joined")) null else "${texts.map { show(it) }}: got ${show(got)}, Python ${show(c.string("joined"))}"
        }
    }
}
