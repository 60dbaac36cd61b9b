package io.github.qwenasredge.text

import java.io.File
import java.text.Normalizer
import java.util.PriorityQueue
import java.util.concurrent.ConcurrentHashMap
import java.util.regex.Pattern

/** An added token of tokenizer.json: [content] matched whole in the text, before any splitting. */
data class AddedToken(val id: Int, val content: String, val special: Boolean)

/**
 * Byte-level BPE as Hugging Face `tokenizers` runs Qwen2/Qwen3's tokenizer.json, from the mobile
 * bundle's plain data (tokenizer/vocab.txt, tokenizer/merges.txt and the manifest's `tokenizer`
 * section).
 *
 * [encode] is `tokenizer.encode(text, add_special_tokens=False).ids`: added tokens found in the
 * text (leftmost, longest first) become their ids; every other piece is NFC-normalized, split by
 * Qwen's pre-tokenizer regex, its UTF-8 bytes mapped to GPT-2's byte alphabet, and merged by rank.
 * [decode] is `tokenizer.decode(ids, skip_special_tokens=...)`: the tokens' bytes joined and read
 * as UTF-8 with Rust's `String::from_utf8_lossy` rules. Thread-safe.
 *
 * Where the JVM and tokenizers may still differ: character properties (`\p{L}`, `\p{N}`, NFC) come
 * from the JVM's Unicode version (13 for Java 17, ICU's on Android) and Oniguruma's in tokenizers,
 * so characters assigned since differ; and a lone surrogate, which no Python str from UTF-8 holds
 * (tokenizers refuses one), is encoded as Java's UTF-8 encoder writes it: '?'.
 */
class BpeTokenizer private constructor(
    private val vocab: Array<String?>,
    private val tokenIds: HashMap<String, Int>,
    private val merges: PairMap,
    addedTokens: List<AddedToken>,
) {
    private val added: Map<Int, AddedToken> = addedTokens.associateBy { it.id }
    private val addedIds: Map<String, Int> = addedTokens.associate { it.content to it.id }

    /** Added tokens by their first char, longest first (leftmost-longest matching). */
    private val addedByFirst: Map<Char, List<AddedToken>> = addedTokens.filter { it.content.isNotEmpty() }
        .sortedByDescending { it.content.length }.groupBy { it.content[0] }

    /** word (a pre-token, in the byte alphabet) -> ids, as tokenizers' BPE cache. */
    private val cache = ConcurrentHashMap<String, IntArray>()

    /** The added tokens' strings, in id order (the markup that parsing removes, and more). */
    val addedStrings: List<String> = addedTokens.sortedBy { it.id }.map { it.content }

    /** Base vocabulary size (ids below it may be model tokens; added tokens come after). */
    val modelVocabSize: Int get() = vocab.size

    /** The id of [token] (an added token's content, or a byte-level token string), or null. */
    fun tokenToId(token: String): Int? = addedIds[token] ?: tokenIds[token]

    /** The token string of [id] (an added token's content, or a byte-level string), or null. */
    fun idToToken(id: Int): String? = added[id]?.content ?: vocab.getOrNull(id)

    fun encode(text: String): IntArray {
        val out = IntList()
        var start = 0 // start of the text not yet tokenized
        var i = 0
        while (i < text.length) {
            val candidates = addedByFirst[text[i]]
            val hit = candidates?.firstOrNull { text.startsWith(it.content, i) }
            if (hit == null) { i++; continue }
            if (i > start) encodeOrdinary(text.substring(start, i), out)
            out.add(hit.id)
            i += hit.content.length
            start = i
        }
        if (start < text.length) encodeOrdinary(text.substring(start), out)
        return out.toArray()
    }

    fun decode(ids: IntArray, skipSpecialTokens: Boolean = true): String {
        val bytes = ByteBuffer()
        for (id in ids) {
            val a = added[id]
            val token = if (a != null) {
                if (skipSpecialTokens && a.special) continue
                a.content
            } else {
                vocab.getOrNull(id) ?: continue // ids out of range, or with no token: dropped
            }
            appendTokenBytes(token, bytes)
        }
        return Utf8Lossy.decode(bytes.data, bytes.size)
    }

    /** tokenizers' ByteLevel decoder: a token whose chars are all in the byte alphabet gives those
     * bytes, any other its own UTF-8. */
    private fun appendTokenBytes(token: String, out: ByteBuffer) {
        val mark = out.size
        for (c in token) {
            val b = if (c.code < CHAR_TO_BYTE.size) CHAR_TO_BYTE[c.code] else -1
            if (b < 0) {
                out.size = mark
                out.addAll(token.toByteArray(Charsets.UTF_8))
                return
            }
            out.add(b.toByte())
        }
    }

    private fun encodeOrdinary(piece: String, out: IntList) {
        val normalized = Normalizer.normalize(piece, Normalizer.Form.NFC)
        val m = PRE_TOKENIZER.matcher(normalized)
        var last = 0
        while (m.find()) {
            if (m.start() > last) encodeWord(normalized.substring(last, m.start()), out) // Isolated: gaps too
            if (m.end() > m.start()) encodeWord(normalized.substring(m.start(), m.end()), out)
            last = m.end()
        }
        if (last < normalized.length) encodeWord(normalized.substring(last), out)
    }

    private fun encodeWord(word: String, out: IntList) {
        val utf8 = word.toByteArray(Charsets.UTF_8)
        val sb = StringBuilder(utf8.size)
        for (b in utf8) sb.append(BYTE_TO_CHAR[b.toInt() and 0xFF])
        val mapped = sb.toString()
        val cached = cache[mapped]
        if (cached != null) { out.addAll(cached); return }
        val ids = bpe(mapped)
        if (cache.size < CACHE_CAPACITY) cache[mapped] = ids
        out.addAll(ids)
    }

    /** tokenizers' Word::merge_all: the pair of lowest rank first (then the leftmost), until no
     * pair of neighbours is a merge. Chars missing from the vocabulary are dropped (no unk). */
    private fun bpe(word: String): IntArray {
        val n = word.length
        val ids = IntArray(n)
        var count = 0
        for (c in word) {
            val id = tokenIds[c.toString()] ?: continue
            ids[count++] = id
        }
        if (count <= 1) return ids.copyOf(count)
        val prev = IntArray(count) { it - 1 }
        val next = IntArray(count) { if (it + 1 < count) it + 1 else -1 }
        val alive = BooleanArray(count) { true }
        // Queue entries: rank in the high 32 bits, position in the low ones: min = lowest rank, then leftmost.
        val queue = PriorityQueue<Long>(count)
        for (k in 0 until count - 1) {
            val slot = merges.find(ids[k], ids[k + 1])
            if (slot >= 0) queue.add(entry(merges.rank(slot), k))
        }
        while (queue.isNotEmpty()) {
            val top = queue.poll()
            val rank = (top ushr 32).toInt()
            val pos = top.toInt()
            if (!alive[pos] || next[pos] == -1) continue
            val right = next[pos]
            val slot = merges.find(ids[pos], ids[right])
            // An expired entry: the pair at pos no longer merges into what was queued (tokenizers
            // compares the merged id, not the pair).
            val newId = merges.newIdOfRank(rank)
            if (slot < 0 || merges.newId(slot) != newId) continue
            ids[pos] = newId
            alive[right] = false
            next[pos] = next[right]
            if (next[right] != -1) prev[next[right]] = pos
            val p = prev[pos]
            if (p >= 0) {
                val s = merges.find(ids[p], ids[pos])
                if (s >= 0) queue.add(entry(merges.rank(s), p))
            }
            val q = next[pos]
            if (q >= 0) {
                val s = merges.find(ids[pos], ids[q])
                if (s >= 0) queue.add(entry(merges.rank(s), pos))
            }
        }
        val out = IntList()
        var k = 0
        while (k != -1) { out.add(ids[k]); k = next[k] }
        return out.toArray()
    }

    companion object {
        /** The pre-tokenizer regex of Qwen2/Qwen3's tokenizer.json, the only one supported. */
        const val QWEN_PATTERN = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}" +
            "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

        /** Unicode White_Space, which `\s` is in Oniguruma (tokenizers' regex engine) and in Rust's
         * regex crate; java.util.regex's `\s` is ASCII only, and Android's ICU lacks some flags. */
        internal const val WHITE_SPACE = "\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A" +
            "\\u2028\\u2029\\u202F\\u205F\\u3000"

        /** [QWEN_PATTERN] for java.util.regex (and Android's ICU), with no flags: `\s` spelled out as
         * White_Space, `(?i:...)` as char classes of each letter's case variants (Unicode simple
         * case folding, as Oniguruma's: U+017F LONG S folds to s). */
        internal val PRE_TOKENIZER: Pattern = Pattern.compile(
            "'[sS\\u017F]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]" +
                "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}" +
                "| ?[^$WHITE_SPACE\\p{L}\\p{N}]+[\\r\\n]*" +
                "|[$WHITE_SPACE]*[\\r\\n]+|[$WHITE_SPACE]+(?![^$WHITE_SPACE])|[$WHITE_SPACE]+",
        )

        private const val CACHE_CAPACITY = 10_000

        /** GPT-2's bytes_to_unicode: byte -> char of the byte-level alphabet, and back. */
        internal val BYTE_TO_CHAR: CharArray = CharArray(256).also { table ->
            var n = 0
            for (b in 0 until 256) {
                val printable = b in '!'.code..'~'.code || b in '¡'.code..'¬'.code || b in '®'.code..'ÿ'.code
                table[b] = if (printable) b.toChar() else (256 + n++).toChar()
            }
        }
        internal val CHAR_TO_BYTE: IntArray = IntArray(324) { -1 }.also { t ->
            for (b in 0 until 256) t[BYTE_TO_CHAR[b].code] = b
        }

        /**
         * Loads the tokenizer.
         *
         * @param vocabFile UTF-8, line k = the byte-level token string of id k ("" for none).
         * @param mergesFile UTF-8, "left right" per line in rank order (a "#version" first line is skipped).
         * @param addedTokens the manifest's `added_tokens`.
         * @param normalizer must be "NFC".
         * @param pattern the pre-tokenizer regex; must be [QWEN_PATTERN].
         * @throws IllegalArgumentException for another normalizer or regex, or malformed files.
         */
        fun load(
            vocabFile: File,
            mergesFile: File,
            addedTokens: List<AddedToken>,
            normalizer: String,
            pattern: String,
        ): BpeTokenizer {
            require(normalizer == "NFC") { "unsupported normalizer '$normalizer': only NFC is" }
            require(pattern == QWEN_PATTERN) {
                "unsupported pre-tokenizer regex (only Qwen2/Qwen3's is supported): $pattern"
            }
            val vocab = readLines(vocabFile)
            val tokenIds = HashMap<String, Int>(vocab.size * 2)
            val table = arrayOfNulls<String>(vocab.size)
            for ((id, token) in vocab.withIndex()) {
                if (token.isEmpty()) continue
                table[id] = token
                tokenIds[token] = id // a token listed twice: the last id, as a JSON object's last key
            }
            val mergeLines = readLines(mergesFile)
            val pairs = PairMap(mergeLines.size)
            for ((k, line) in mergeLines.withIndex()) {
                if (k == 0 && line.startsWith("#version")) continue
                if (line.isEmpty()) continue
                val space = line.indexOf(' ')
                require(space > 0 && line.indexOf(' ', space + 1) < 0) {
                    "${mergesFile.name} line ${k + 1} is not 'left right': $line"
                }
                val a = line.substring(0, space)
                val b = line.substring(space + 1)
                val ia = tokenIds[a] ?: throw IllegalArgumentException("merge '$line': '$a' is not in the vocabulary")
                val ib = tokenIds[b] ?: throw IllegalArgumentException("merge '$line': '$b' is not in the vocabulary")
                val merged = tokenIds[a + b]
                    ?: throw IllegalArgumentException("merge '$line': '${a + b}' is not in the vocabulary")
                pairs.put(ia, ib, k, merged) // a pair listed twice: the last rank wins, as in tokenizers
            }
            for (t in addedTokens) require(t.content.isNotEmpty()) { "added token ${t.id} is empty" }
            return BpeTokenizer(table, tokenIds, pairs, addedTokens)
        }

        /** Loads from the manifest's `tokenizer` section; its paths are relative to [bundleDir]. */
        fun fromManifestSection(bundleDir: File, section: Map<String, Any?>): BpeTokenizer = load(
            File(bundleDir, section.string("vocab")),
            File(bundleDir, section.string("merges")),
            section.list("added_tokens").map {
                @Suppress("UNCHECKED_CAST")
                val t = it as? Map<String, Any?> ?: throw JsonException("an added token is not an object: $it")
                AddedToken(t.int("id"), t.string("content"), t.bool("special"))
            },
            section.string("normalizer"),
            section.string("pre_tokenizer_pattern"),
        )

        /** Lines split at '\n' only (byte-level tokens never hold line breaks; other breaks are data). */
        private fun readLines(file: File): List<String> {
            val text = file.readText(Charsets.UTF_8)
            val lines = text.split('\n')
            return if (lines.isNotEmpty() && lines.last().isEmpty()) lines.subList(0, lines.size - 1) else lines
        }

        private fun entry(rank: Int, pos: Int): Long = (rank.toLong() shl 32) or pos.toLong()
    }
}

/** Rust's `String::from_utf8_lossy`: each maximal invalid subpart (the start of a sequence that
 * cannot go on, or a lone byte) becomes one U+FFFD, as the Unicode standard recommends. */
object Utf8Lossy {
    fun decode(b: ByteArray, length: Int = b.size): String {
        val sb = StringBuilder(length)
        var i = 0
        while (i < length) {
            val c0 = b[i].toInt() and 0xFF
            if (c0 < 0x80) { sb.append(c0.toChar()); i++; continue }
            val width = when (c0) {
                in 0xC2..0xDF -> 2
                in 0xE0..0xEF -> 3
                in 0xF0..0xF4 -> 4
                else -> 0
            }
            if (width == 0) { sb.append('\uFFFD'); i++; continue }
            fun at(k: Int): Int = if (k < length) b[k].toInt() and 0xFF else -1
            val c1 = at(i + 1)
            val secondOk = when (width) {
                2 -> c1 in 0x80..0xBF
                3 -> when (c0) {
                    0xE0 -> c1 in 0xA0..0xBF
                    0xED -> c1 in 0x80..0x9F
                    else -> c1 in 0x80..0xBF
                }
                else -> when (c0) {
                    0xF0 -> c1 in 0x90..0xBF
                    0xF4 -> c1 in 0x80..0x8F
                    else -> c1 in 0x80..0xBF
                }
            }
            if (!secondOk) { sb.append('\uFFFD'); i++; continue }
            if (width == 2) {
                sb.append((((c0 and 0x1F) shl 6) or (c1 and 0x3F)).toChar()); i += 2; continue
            }
            val c2 = at(i + 2)
            if (c2 !in 0x80..0xBF) { sb.append('\uFFFD'); i += 2; continue }
            if (width == 3) {
                sb.append((((c0 and 0x0F) shl 12) or ((c1 and 0x3F) shl 6) or (c2 and 0x3F)).toChar()); i += 3; continue
            }
            val c3 = at(i + 3)
            if (c3 !in 0x80..0xBF) { sb.append('\uFFFD'); i += 3; continue }
            sb.appendCodePoint(((c0 and 0x07) shl 18) or ((c1 and 0x3F) shl 12) or ((c2 and 0x3F) shl 6) or (c3 and 0x3F))
            i += 4
        }
        return sb.toString()
    }
}

/** (left id, right id) -> (rank, merged id), open addressing on a packed long key. */
internal class PairMap(expected: Int) {
    private var capacity = Integer.highestOneBit(maxOf(16, expected * 2 - 1)) shl 1
    private var keys = LongArray(capacity) { EMPTY }
    private var ranks = IntArray(capacity)
    private var newIds = IntArray(capacity)
    private var size = 0

    fun put(a: Int, b: Int, rank: Int, newId: Int) {
        if ((size + 1) * 2 > capacity) grow()
        val key = (a.toLong() shl 32) or (b.toLong() and 0xFFFFFFFFL)
        var slot = index(key)
        while (keys[slot] != EMPTY && keys[slot] != key) slot = (slot + 1) and (capacity - 1)
        if (keys[slot] == EMPTY) size++
        keys[slot] = key
        ranks[slot] = rank
        newIds[slot] = newId
        if (rank >= byRank.size) byRank = byRank.copyOf(maxOf(rank + 1, byRank.size * 2))
        byRank[rank] = newId
    }

    /** The slot of (a, b), or -1. */
    fun find(a: Int, b: Int): Int {
        val key = (a.toLong() shl 32) or (b.toLong() and 0xFFFFFFFFL)
        var slot = index(key)
        while (true) {
            val k = keys[slot]
            if (k == key) return slot
            if (k == EMPTY) return -1
            slot = (slot + 1) and (capacity - 1)
        }
    }

    fun rank(slot: Int): Int = ranks[slot]
    fun newId(slot: Int): Int = newIds[slot]

    /** rank -> merged id (ranks are line numbers: one merge each). */
    private var byRank = IntArray(maxOf(16, expected))

    fun newIdOfRank(rank: Int): Int = byRank[rank]

    private fun index(key: Long): Int {
        var h = key * -0x61c8864680b583ebL
        h = h xor (h ushr 29)
        return (h.toInt()) and (capacity - 1)
    }

    private fun grow() {
        val oldKeys = keys
        val oldRanks = ranks
        val oldIds = newIds
        capacity *= 2
        keys = LongArray(capacity) { EMPTY }
        ranks = IntArray(capacity)
        newIds = IntArray(capacity)
        size = 0
        for (s in oldKeys.indices) {
            val k = oldKeys[s]
            if (k != EMPTY) put((k ushr 32).toInt(), k.toInt(), oldRanks[s], oldIds[s])
        }
    }

    private companion object { const val EMPTY = Long.MIN_VALUE }
}

internal class IntList {
    private var data = IntArray(16)
    var size = 0
        private set

    fun add(v: Int) {
        if (size == data.size) data = data.copyOf(size * 2)
        data[size++] = v
    }

    fun addAll(v: IntArray) { for (x in v) add(x) }
    fun toArray(): IntArray = data.copyOf(size)
}

internal class ByteBuffer {
    var data = ByteArray(64)
        private set
    var size = 0

    fun add(v: Byte) {
        if (size == data.size) data = data.copyOf(size * 2)
        data[size++] = v
    }

    fun addAll(v: ByteArray) { for (x in v) add(x) }
}
