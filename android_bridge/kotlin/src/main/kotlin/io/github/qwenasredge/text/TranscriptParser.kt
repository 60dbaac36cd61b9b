package io.github.qwenasredge.text

import java.util.Locale
import java.util.concurrent.ConcurrentHashMap
import java.util.regex.Matcher
import java.util.regex.Pattern

/** One chunk's output, parsed (runtime/parsing.py's ParsedOutput). */
data class ParsedOutput(val language: String, val text: String, val reachedText: Boolean = true)

/**
 * A port of runtime/parsing.py (`parse_output`, `fix_repetitions`, `strip_control_tokens`,
 * `parse_transcript`) and runtime/text.py (`join_texts`), giving the Python functions' results.
 *
 * Python's `str` is a sequence of code points and its `re` is Unicode-aware; Java strings are
 * UTF-16 and java.util.regex (and Android's ICU) differ in `\b`, `\w`, `\s`, IGNORECASE and
 * lookbehind over surrogate pairs. So: everything that counts characters works on code points;
 * Python's whitespace (`str.isspace`, which `\s` and `strip()` use: White_Space plus U+001C..1F)
 * and word chars (`\w`: letters, numbers, `_`) are spelled out as classes; IGNORECASE is spelled
 * out per letter with Python's case equivalents (i: U+0130 U+0131, k: U+212A, s: U+017F); `\b`
 * beside a name becomes a lookaround on word chars; and the patterns with lookbehind run on a copy
 * of the text with one BMP char per code point (a supplementary char replaced by a stand-in of
 * its class), so that every lookbehind sees a whole character, as Python's does.
 */
object TranscriptParser {
    const val ASR_TEXT_TAG = "<asr_text>"
    const val LANGUAGE_PREFIX = "language "
    const val REPEAT_THRESHOLD = 20
    const val MAX_PATTERN = 20

    /** runtime.parsing.CONTROL_TOKENS. */
    val CONTROL_TOKENS: List<String> = listOf(
        "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>",
        "<non_speech>", "<timestamp>", "<tts_pad>", "<tts_text_bos>", "<tts_text_eod>", "<tts_text_bos_single>",
    )

    /** The language names of runtime.prompt.ISO_CODES (the names `_NAMES` is made of). */
    val LANGUAGE_NAMES: List<String> = listOf(
        "Arabic", "Czech", "Danish", "German", "Greek", "English", "Spanish", "Persian", "Finnish",
        "Filipino", "French", "Hindi", "Hungarian", "Indonesian", "Italian", "Japanese", "Korean",
        "Macedonian", "Malay", "Dutch", "Polish", "Portuguese", "Romanian", "Russian", "Swedish", "Thai",
        "Turkish", "Vietnamese", "Cantonese", "Chinese",
    )

    // --- Python's character classes, for java.util.regex (no flags, which ICU may lack) ---

    /** Python's `str.isspace()` / re's `\s`. */
    private const val SPACE = "\\t\\n\\u000B\\f\\r\\u001C-\\u001F \\u0085\\u00A0\\u1680\\u2000-\\u200A" +
        "\\u2028\\u2029\\u202F\\u205F\\u3000"

    /** re's `\w`: str.isalnum() (letters Lu Ll Lt Lm Lo, numbers Nd Nl No) or `_`; not marks. */
    private const val WORD = "\\p{L}\\p{N}_"

    fun isPySpace(cp: Int): Boolean = when (cp) {
        in 0x09..0x0D, in 0x1C..0x20, 0x85, 0xA0, 0x1680, in 0x2000..0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000 -> true
        else -> false
    }

    /** A letter of a pattern compiled with re.IGNORECASE: the chars Python's re takes as equal. */
    private fun ci(c: Char): String {
        if (c !in 'a'..'z' && c !in 'A'..'Z') return if (c.isLetterOrDigit()) c.toString() else "\\$c"
        val lower = c.lowercaseChar()
        val extra = when (lower) {
            'i' -> "\\u0130\\u0131"
            'k' -> "\\u212A"
            's' -> "\\u017F"
            else -> ""
        }
        return "[$lower${lower.uppercaseChar()}$extra]"
    }

    private fun ci(s: String): String = s.map { ci(it) }.joinToString("")

    private fun names(names: Collection<String>): String =
        (names + "None").distinct().sortedByDescending { it.codePointCount(0, it.length) }.joinToString("|") { ci(it) }

    private class Patterns(languageNames: Collection<String>) {
        val namesRe = "(?:(?<![$WORD])(?:${names(languageNames)})(?![$WORD]))"

        /** _PREFIX: `(?:language[ \t]*)?(?:\b(?:NAMES)\b)?\s*<asr_text>`, IGNORECASE. */
        val prefix: Pattern = Pattern.compile("(?:${ci("language")}[ \\t]*)?$namesRe?[$SPACE]*${ci(ASR_TEXT_TAG)}")

        /** _HALF_TAG. */
        val halfTag: Pattern = Pattern.compile(
            "${ci("language")}[ \\t]*$namesRe?[$SPACE]*<" +
                "(?:${ci('a')}(?:${ci('s')}(?:${ci('r')}(?:_(?:${ci('t')}(?:${ci('e')}(?:${ci('x')}(?:${ci('t')}>?)?)?)?)?)?)?)?)?",
        )

        /** _CUT_PREFIX; `[^\W\d_]` = letters and non-decimal numbers; `$` = end or before a final "\n". */
        val cutPrefix: Pattern = Pattern.compile(
            "(?:^|(?<=[^$WORD$SPACE]))(?:${ci("language")}(?:[ \\t]+[\\p{L}\\p{Nl}\\p{No}]*)?|" +
                listOf("languag", "langua", "langu", "lang", "lan", "la", "l").joinToString("|") { ci(it) } +
                ")[$SPACE]*(?=\\n?\\z)",
        )
    }

    private val defaultPatterns = Patterns(LANGUAGE_NAMES)
    private val controlPatterns = ConcurrentHashMap<List<String>, Pattern>()

    // --- parse_output and fix_repetitions ---

    /** parse_output: (language, text) from `language X<asr_text>text`; language "" when unknown or none. */
    fun parseOutput(raw: String?, forcedLanguage: String? = null): Pair<String, String> {
        var s = pyStrip(raw ?: "")
        if (s.isEmpty()) return "" to ""
        s = fixRepetitions(s)
        if (!forcedLanguage.isNullOrEmpty()) return forcedLanguage to s
        val tag = s.indexOf(ASR_TEXT_TAG)
        if (tag < 0) return "" to pyStrip(s)
        val meta = s.substring(0, tag)
        val text = s.substring(tag + ASR_TEXT_TAG.length)
        // meta.lower(): only A-Z (and U+0130, U+212A, which lower to i and k) lower to ASCII, and
        // "language none" holds no i or k, so lowering ASCII only finds the same.
        if (asciiLower(meta).contains("language none")) return "" to pyStrip(text)
        var language = ""
        for (line0 in pySplitLines(meta)) {
            val line = pyStrip(line0)
            if (line.isEmpty()) continue
            if (line.length >= LANGUAGE_PREFIX.length && asciiLower(line.substring(0, LANGUAGE_PREFIX.length)) == LANGUAGE_PREFIX) {
                val value = pyStrip(line.substring(LANGUAGE_PREFIX.length))
                if (value.isNotEmpty()) {
                    val first = Character.charCount(value.codePointAt(0))
                    language = value.substring(0, first).uppercase(Locale.ROOT) + value.substring(first).lowercase(Locale.ROOT)
                }
                break
            }
        }
        return language to pyStrip(text)
    }

    fun fixRepetitions(text: String, threshold: Int = REPEAT_THRESHOLD): String {
        val cps = text.codePoints().toArray()
        val out = collapsePatternRuns(collapseCharRuns(cps, threshold), threshold)
        return String(out, 0, out.size)
    }

    private fun collapseCharRuns(s: IntArray, threshold: Int): IntArray {
        val out = IntList()
        var i = 0
        val n = s.size
        while (i < n) {
            var j = i + 1
            while (j < n && s[j] == s[i]) j++
            if (j - i > threshold) out.add(s[i]) else for (k in i until j) out.add(s[k])
            i = j
        }
        return out.toArray()
    }

    private fun findRepeat(s: IntArray, start: Int, threshold: Int): IntArray? {
        val n = s.size
        for (i in start until n - 2 * threshold + 1) {
            for (k in 1..MAX_PATTERN) {
                if (i + k * threshold > n) break
                var all = true
                var r = 1
                while (all && r < threshold) {
                    for (q in 0 until k) if (s[i + r * k + q] != s[i + q]) { all = false; break }
                    r++
                }
                if (all) return intArrayOf(i, k)
            }
        }
        return null
    }

    private fun collapsePatternRuns(s: IntArray, threshold: Int): IntArray {
        val out = IntList()
        var start = 0
        while (s.size - start >= 2 * threshold) {
            val found = findRepeat(s, start, threshold) ?: break
            val i = found[0]
            val k = found[1]
            var end = i + k * threshold
            while (end + k <= s.size && (0 until k).all { s[end + it] == s[i + it] }) end += k
            for (q in start until i + k) out.add(s[q]) // s[start:i] + pattern
            start = end
        }
        for (q in start until s.size) out.add(s[q])
        return out.toArray()
    }

    // --- strip_control_tokens and parse_transcript ---

    /** strip_control_tokens: [raw] without control tokens (`<asr_text>` stays). */
    fun stripControlTokens(raw: String, markup: Iterable<String> = emptyList()): String {
        val key = markup.toList()
        val pattern = controlPatterns.getOrPut(key) {
            val tokens = LinkedHashSet(CONTROL_TOKENS).apply { addAll(key); remove(ASR_TEXT_TAG) }
            val alternatives = listOf("<\\|[^<>|$SPACE]{1,64}\\|>") +
                tokens.sortedByDescending { it.codePointCount(0, it.length) }.map { quote(it) }
            Pattern.compile(alternatives.joinToString("|"))
        }
        // Forward matching in java.util.regex steps over whole code points, as Python's does.
        return pattern.matcher(raw).replaceAll("")
    }

    /**
     * parse_transcript: one chunk's decoded output -> language and text, with no model control
     * markup in the text (see runtime/parsing.py).
     *
     * @param raw the generated tokens decoded with special tokens skipped.
     * @param forcedLanguage the language the prompt forced (its name), or null.
     * @param truncated whether generation stopped at the token cap rather than at a stop id.
     * @param markup more control-token strings to drop (the tokenizer's added tokens).
     */
    fun parseTranscript(
        raw: String?,
        forcedLanguage: String? = null,
        truncated: Boolean = false,
        markup: Iterable<String> = emptyList(),
    ): ParsedOutput {
        val s = stripControlTokens(raw ?: "", markup)
        val (language, parsed) = parseOutput(s, forcedLanguage)
        if (forcedLanguage.isNullOrEmpty() && !s.contains(ASR_TEXT_TAG)) return ParsedOutput(language, "", false)
        val p = defaultPatterns
        var text = joinTexts(split(p.halfTag, joinTexts(split(p.prefix, parsed))))
        if (truncated) text = pyStrip(sub(p.cutPrefix, text))
        return ParsedOutput(language, text)
    }

    // --- join_texts (runtime/text.py) ---

    private val NO_SPACE_RANGES = arrayOf(
        0x2E80..0x2FDF, 0x3000..0x303F, 0x3040..0x30FF, 0x3100..0x312F, 0x31F0..0x31FF, 0x3400..0x4DBF,
        0x4E00..0x9FFF, 0xF900..0xFAFF, 0xFE30..0xFE4F, 0xFF00..0xFFEF, 0x20000..0x323AF,
    )

    /** Whether the code point belongs to a script written without spaces between words. */
    fun writtenWithoutSpaces(cp: Int): Boolean = NO_SPACE_RANGES.any { cp in it }

    /** What goes between [before] and [after] (both stripped, non-empty). */
    fun separator(before: String, after: String): String =
        if (writtenWithoutSpaces(before.codePointBefore(before.length)) || writtenWithoutSpaces(after.codePointAt(0))) "" else " "

    /** join_texts: pieces stripped, empty ones dropped, joined as their language writes them. */
    fun joinTexts(texts: Iterable<String>): String {
        var out = ""
        for (t in texts) {
            val piece = pyStrip(t)
            if (piece.isEmpty()) continue
            out = if (out.isEmpty()) piece else out + separator(out, piece) + piece
        }
        return out
    }

    // --- Python str helpers ---

    /** str.strip(): Python's whitespace (which Kotlin's trim() does not match) off both ends. */
    fun pyStrip(s: String): String {
        var a = 0
        var b = s.length
        while (a < b && isPySpace(s[a].code)) a++
        while (b > a && isPySpace(s[b - 1].code)) b--
        return s.substring(a, b)
    }

    /** str.rstrip(): Python's whitespace off the end. */
    fun pyRstrip(s: String): String {
        var b = s.length
        while (b > 0 && isPySpace(s[b - 1].code)) b--
        return s.substring(0, b)
    }

    /** str.splitlines(): at \n, \r, \r\n, \v, \f, \x1c, \x1d, \x1e, \x85, \u2028, \u2029. */
    fun pySplitLines(s: String): List<String> {
        val out = ArrayList<String>()
        var start = 0
        var i = 0
        while (i < s.length) {
            val c = s[i]
            val brk = c == '\n' || c == '\r' || c == '\u000B' || c == '\u000C' || c in '\u001C'..'\u001E' ||
                c == '\u0085' || c == '\u2028' || c == '\u2029'
            if (!brk) { i++; continue }
            out.add(s.substring(start, i))
            i += if (c == '\r' && i + 1 < s.length && s[i + 1] == '\n') 2 else 1
            start = i
        }
        if (start < s.length) out.add(s.substring(start))
        return out
    }

    private fun asciiLower(s: String): String {
        val chars = s.toCharArray()
        for (k in chars.indices) if (chars[k] in 'A'..'Z') chars[k] = chars[k] + 32
        return String(chars)
    }

    private fun quote(s: String): String = buildString {
        for (c in s) if (c.isLetterOrDigit() || c.code >= 128 || c == ' ') append(c) else append('\\').append(c)
    }

    // --- regex on code points ---

    /** [s] with one char per code point: a supplementary one becomes a BMP stand-in of its class
     * (letter, decimal digit, other number, other), which is all the patterns ask of it. */
    private class CodePoints(s: String) {
        val cps: IntArray = s.codePoints().toArray()
        val folded: String = String(CharArray(cps.size) { k -> standIn(cps[k]) })

        fun text(from: Int, to: Int): String = String(cps, from, to - from)

        private fun standIn(cp: Int): Char {
            if (cp < 0x10000) return cp.toChar()
            return when (Character.getType(cp).toByte()) {
                Character.UPPERCASE_LETTER, Character.LOWERCASE_LETTER, Character.TITLECASE_LETTER,
                Character.MODIFIER_LETTER, Character.OTHER_LETTER -> '\u4E00'
                Character.DECIMAL_DIGIT_NUMBER -> '\u0660'
                Character.LETTER_NUMBER, Character.OTHER_NUMBER -> '\u00B2'
                else -> '\u25A1'
            }
        }
    }

    /** re.split (no groups). */
    private fun split(p: Pattern, s: String): List<String> {
        val t = CodePoints(s)
        val m: Matcher = p.matcher(t.folded)
        val out = ArrayList<String>()
        var last = 0
        while (m.find()) {
            out.add(t.text(last, m.start()))
            last = m.end()
        }
        out.add(t.text(last, t.cps.size))
        return out
    }

    /** re.sub(p, "", s) (p never matches empty). */
    private fun sub(p: Pattern, s: String): String {
        val t = CodePoints(s)
        val m = p.matcher(t.folded)
        val out = StringBuilder()
        var last = 0
        while (m.find()) {
            out.append(t.text(last, m.start()))
            last = m.end()
        }
        out.append(t.text(last, t.cps.size))
        return out.toString()
    }
}
