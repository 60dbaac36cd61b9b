package io.github.qwenasredge.text

import java.io.File

/** A JSON text that is not RFC 8259 JSON, or a value of the wrong type; [position] is the UTF-16
 * offset in the text (-1 when the error is about a parsed value, not the text). */
class JsonException(message: String, val position: Int = -1) : RuntimeException(message)

/**
 * A small strict JSON reader (RFC 8259): objects become `Map<String, Any?>` (a LinkedHashMap, in
 * document order; a repeated key keeps its last value, as Python's json does), arrays
 * `List<Any?>`, strings `String` (every escape, surrogate pairs from two `\u` escapes; a lone
 * escaped surrogate is kept as that char, as Python's json does), numbers `Long` when written
 * without fraction or exponent and within Long's range, else `Double`, and true/false/null.
 * Nothing else is accepted: no comments, trailing commas, single quotes, NaN, leading zeros,
 * control characters in strings, or text after the value (whitespace aside).
 */
object Json {
    /** Nesting deeper than this is refused rather than risking the stack. */
    const val MAX_DEPTH = 512

    fun parse(text: String): Any? = Reader(text).readDocument()

    fun parseFile(file: File): Any? = parse(file.readText(Charsets.UTF_8))

    /** [text] parsed, which must be an object. */
    @Suppress("UNCHECKED_CAST")
    fun parseObject(text: String): Map<String, Any?> =
        parse(text) as? Map<String, Any?> ?: throw JsonException("JSON text is not an object")

    private class Reader(private val s: String) {
        private var i = 0
        private var depth = 0

        fun readDocument(): Any? {
            // A byte order mark is not JSON text, but RFC 8259 lets a reader ignore one.
            if (s.startsWith("\uFEFF")) i = 1
            skipWs()
            val v = readValue()
            skipWs()
            if (i < s.length) fail("unexpected ${describe()} after the JSON value")
            return v
        }

        private fun fail(what: String, at: Int = i): Nothing {
            var line = 1
            var col = 1
            for (k in 0 until minOf(at, s.length)) {
                if (s[k] == '\n') { line++; col = 1 } else col++
            }
            throw JsonException("$what at offset $at (line $line, column $col)", at)
        }

        private fun describe(): String =
            if (i >= s.length) "end of text" else "character '${s[i]}' (U+%04X)".format(s[i].code)

        private fun skipWs() {
            while (i < s.length) {
                val c = s[i]
                if (c == ' ' || c == '\t' || c == '\n' || c == '\r') i++ else break
            }
        }

        private fun readValue(): Any? {
            if (i >= s.length) fail("expected a value, found end of text")
            return when (val c = s[i]) {
                '{' -> nested { readObject() }
                '[' -> nested { readArray() }
                '"' -> readString()
                't' -> literal("true", true)
                'f' -> literal("false", false)
                'n' -> literal("null", null)
                else -> if (c == '-' || c in '0'..'9') readNumber() else fail("expected a value, found ${describe()}")
            }
        }

        private inline fun <T> nested(read: () -> T): T {
            if (++depth > MAX_DEPTH) fail("nesting deeper than $MAX_DEPTH")
            val v = read()
            depth--
            return v
        }

        private fun literal(word: String, value: Any?): Any? {
            if (!s.startsWith(word, i)) fail("expected a value, found ${describe()}")
            i += word.length
            return value
        }

        private fun readObject(): Map<String, Any?> {
            val out = LinkedHashMap<String, Any?>()
            i++ // {
            skipWs()
            if (i < s.length && s[i] == '}') { i++; return out }
            while (true) {
                skipWs()
                if (i >= s.length || s[i] != '"') fail("expected a string key, found ${describe()}")
                val key = readString()
                skipWs()
                if (i >= s.length || s[i] != ':') fail("expected ':' after an object key, found ${describe()}")
                i++
                skipWs()
                out[key] = readValue()
                skipWs()
                if (i >= s.length) fail("unterminated object: expected ',' or '}', found end of text")
                when (s[i]) {
                    ',' -> i++
                    '}' -> { i++; return out }
                    else -> fail("expected ',' or '}' in an object, found ${describe()}")
                }
            }
        }

        private fun readArray(): List<Any?> {
            val out = ArrayList<Any?>()
            i++ // [
            skipWs()
            if (i < s.length && s[i] == ']') { i++; return out }
            while (true) {
                skipWs()
                out.add(readValue())
                skipWs()
                if (i >= s.length) fail("unterminated array: expected ',' or ']', found end of text")
                when (s[i]) {
                    ',' -> i++
                    ']' -> { i++; return out }
                    else -> fail("expected ',' or ']' in an array, found ${describe()}")
                }
            }
        }

        private fun readString(): String {
            val start = i
            i++ // opening quote
            // Fast path: no escapes.
            var j = i
            while (j < s.length) {
                val c = s[j]
                if (c == '"' || c == '\\' || c < ' ') break
                j++
            }
            if (j < s.length && s[j] == '"') {
                val v = s.substring(i, j)
                i = j + 1
                return v
            }
            val sb = StringBuilder(j - i + 16)
            sb.append(s, i, j)
            i = j
            while (true) {
                if (i >= s.length) fail("unterminated string", start)
                val c = s[i]
                when {
                    c == '"' -> { i++; return sb.toString() }
                    c == '\\' -> {
                        if (i + 1 >= s.length) fail("unterminated string", start)
                        when (val e = s[i + 1]) {
                            '"' -> sb.append('"')
                            '\\' -> sb.append('\\')
                            '/' -> sb.append('/')
                            'b' -> sb.append('\b')
                            'f' -> sb.append('\u000C')
                            'n' -> sb.append('\n')
                            'r' -> sb.append('\r')
                            't' -> sb.append('\t')
                            'u' -> {
                                if (i + 6 > s.length) fail("truncated \\u escape")
                                var v = 0
                                for (k in i + 2 until i + 6) {
                                    val d = Character.digit(s[k], 16)
                                    if (d < 0 || s[k].code > 127) fail("invalid hex digit in a \\u escape", k)
                                    v = v * 16 + d
                                }
                                sb.append(v.toChar())
                                i += 4
                            }
                            else -> fail("invalid escape '\\$e'")
                        }
                        i += 2
                    }
                    c < ' ' -> fail("unescaped control character U+%04X in a string".format(c.code))
                    else -> { sb.append(c); i++ }
                }
            }
        }

        private fun readNumber(): Any {
            val start = i
            if (s[i] == '-') i++
            if (i >= s.length || s[i] !in '0'..'9') fail("expected a digit after '-'", i)
            if (s[i] == '0') {
                i++
                if (i < s.length && s[i] in '0'..'9') fail("leading zero in a number", start)
            } else {
                while (i < s.length && s[i] in '0'..'9') i++
            }
            var integral = true
            if (i < s.length && s[i] == '.') {
                integral = false
                i++
                if (i >= s.length || s[i] !in '0'..'9') fail("expected a digit after '.'")
                while (i < s.length && s[i] in '0'..'9') i++
            }
            if (i < s.length && (s[i] == 'e' || s[i] == 'E')) {
                integral = false
                i++
                if (i < s.length && (s[i] == '+' || s[i] == '-')) i++
                if (i >= s.length || s[i] !in '0'..'9') fail("expected a digit in an exponent")
                while (i < s.length && s[i] in '0'..'9') i++
            }
            val text = s.substring(start, i)
            if (integral) text.toLongOrNull()?.let { return it }
            return text.toDouble()
        }
    }
}

// Typed accessors for parsed JSON, with errors that name the key.

@Suppress("UNCHECKED_CAST")
fun Map<String, Any?>.obj(key: String): Map<String, Any?> =
    this[key] as? Map<String, Any?> ?: throw JsonException("'$key' is not an object: ${this[key]}")

@Suppress("UNCHECKED_CAST")
fun Map<String, Any?>.list(key: String): List<Any?> =
    this[key] as? List<Any?> ?: throw JsonException("'$key' is not an array: ${this[key]}")

fun Map<String, Any?>.string(key: String): String =
    this[key] as? String ?: throw JsonException("'$key' is not a string: ${this[key]}")

fun Map<String, Any?>.stringOrNull(key: String): String? = when (val v = this[key]) {
    null -> null
    is String -> v
    else -> throw JsonException("'$key' is not a string or null: $v")
}

fun Map<String, Any?>.long(key: String): Long =
    this[key] as? Long ?: throw JsonException("'$key' is not an integer: ${this[key]}")

fun Map<String, Any?>.int(key: String): Int {
    val v = long(key)
    if (v < Int.MIN_VALUE || v > Int.MAX_VALUE) throw JsonException("'$key' is out of Int range: $v")
    return v.toInt()
}

fun Map<String, Any?>.double(key: String): Double =
    (this[key] as? Number)?.toDouble() ?: throw JsonException("'$key' is not a number: ${this[key]}")

fun Map<String, Any?>.bool(key: String): Boolean =
    this[key] as? Boolean ?: throw JsonException("'$key' is not a boolean: ${this[key]}")

/** A JSON array of integers as an IntArray. */
fun List<Any?>.toIntArrayStrict(): IntArray = IntArray(size) { k ->
    val v = this[k] as? Long ?: throw JsonException("element $k is not an integer: ${this[k]}")
    if (v < Int.MIN_VALUE || v > Int.MAX_VALUE) throw JsonException("element $k is out of Int range: $v")
    v.toInt()
}
