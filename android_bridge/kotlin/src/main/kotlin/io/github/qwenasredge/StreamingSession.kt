package io.github.qwenasredge

import io.github.qwenasredge.text.TranscriptParser
import kotlin.math.ceil
import kotlin.math.roundToInt

/**
 * Options of [QwenAsr.stream], as the Python runtime's `StreamingOptions` (runtime/streaming.py).
 *
 * @property chunkSeconds one step per this much new audio (official `chunk_size_sec`).
 * @property unfixedChunks steps at the start of an utterance decoded without a prefix.
 * @property unfixedTokens tokens of the previous answer rolled back for the next prefix.
 * @property stableSteps consecutive answers that must agree on a token before it is committed;
 *   null commits only at the end of an utterance (the official algorithm exactly).
 * @property maxUtteranceSeconds cut and commit an utterance this long at its quietest 100 ms,
 *   so a stream of any length costs the same per step; null never cuts.
 * @property contextTokens tokens of committed text carried into the next utterance's context.
 * @property maxNewTokens cap on the tokens one step generates; null: the offline cap of the
 *   utterance's length.
 * @property repetitionGuard stop a step's decoding when its answer ends in a loop.
 * @property mode "bounded" (completed encoder windows and the decoder's KV cache of the prompt's
 *   unchanged start are kept: a step computes the open window and what follows it) or
 *   "reference" (every step recomputes everything, as the official code); the same tokens.
 * @throws IllegalArgumentException a value out of range, as the Python class.
 */
data class StreamingOptions(
    val chunkSeconds: Double = 2.0,
    val unfixedChunks: Int = 2,
    val unfixedTokens: Int = 5,
    val stableSteps: Int? = 2,
    val maxUtteranceSeconds: Double? = 30.0,
    val contextTokens: Int = 16,
    val maxNewTokens: Int? = null,
    val repetitionGuard: Boolean = true,
    val mode: String = "bounded",
) {
    init {
        require(mode == "bounded" || mode == "reference") { "mode must be bounded or reference, got '$mode'" }
        require(chunkSeconds > 0 && chunkSeconds.isFinite()) { "chunkSeconds must be a positive number of seconds, got $chunkSeconds" }
        require(unfixedChunks >= 0 && unfixedTokens >= 0 && contextTokens >= 0) {
            "unfixedChunks, unfixedTokens and contextTokens must be at least 0"
        }
        require(stableSteps == null || stableSteps >= 1) { "stableSteps must be at least 1, or null" }
        require(maxNewTokens == null || maxNewTokens >= 1) { "maxNewTokens must be at least 1" }
        val shortest = maxOf(2 * CUT_SEARCH_SECONDS, 2 * chunkSeconds)
        require(maxUtteranceSeconds == null || (maxUtteranceSeconds >= shortest && maxUtteranceSeconds.isFinite())) {
            "maxUtteranceSeconds must be at least $shortest s, or null; got $maxUtteranceSeconds"
        }
    }

    internal companion object {
        const val CUT_SEARCH_SECONDS = 5.0
        const val CUT_WINDOW_SECONDS = 0.1
    }
}

/**
 * The state of a stream's text after one step, as the Python runtime's `StreamUpdate`.
 *
 * @property committed all committed text of the stream; it never changes afterwards, only grows.
 * @property tentative what follows it for now (may change or vanish), with its leading space.
 * @property language the current utterance's language ("" until the model names one).
 * @property end seconds of stream audio this update covers.
 * @property newCommitted what this update appended to [committed].
 * @property isFinal true for [StreamingSession.finish]'s update only.
 * @property computeSeconds wall time of this update's work.
 */
class StreamUpdate(
    val committed: String,
    val tentative: String,
    val language: String,
    val end: Double,
    val newCommitted: String,
    val isFinal: Boolean,
    val computeSeconds: Double,
) {
    val text: String get() = committed + tentative
}

/**
 * Live transcription with the official streaming algorithm (`Qwen3ASRModel.streaming_transcribe`),
 * a port of the Python runtime's `StreamingSession` (runtime/streaming.py, whose docstring explains
 * the algorithm, the committed text and the utterance cut), both modes ([StreamingOptions.mode]):
 * "bounded" by default, where a step encodes only the open 8 s window and prefills only what
 * follows the prompt's unchanged start on a KV cache kept across steps, so its cost does not grow
 * with the utterance; a bundle whose encoder attends over the whole clip streams in "reference".
 *
 * Audio is mono float at the model's rate (16 kHz), fed in blocks of any size. Not thread-safe.
 * [finish] (or [close], to abandon the stream) frees its native memory.
 */
class StreamingSession internal constructor(
    private val asr: QwenAsr,
    /** The forced language's name, or null. */
    val language: String?,
    private val context: String,
    val options: StreamingOptions,
) : AutoCloseable {
    /** The mode in use: the options', or "reference" for an encoder without windows. */
    val mode: String = if (asr.bundle.encoderAttention == "windowed") options.mode else "reference"
    private val windows = if (mode == "bounded") EncoderWindows(asr) else null
    private val kept = if (mode == "bounded") asr.keptPrefix() else null
    private val rate = asr.sampleRate
    private val markup = asr.bundle.markup
    private val eos = asr.bundle.eos.toSet()
    private val stepSamples = maxOf(1, (options.chunkSeconds * rate).roundToInt())
    private var pending = FloatArray(0)
    private var heard = 0L
    private val done = ArrayList<String>()
    private val spoken = LinkedHashMap<String, Long>()
    private var committed = ""
    private var reported = ""
    private var closed = false

    private var audio = FloatArray(0)
    private var utteranceContext = context
    private var chunkId = 0
    private var raw = ""
    private var committedRaw = ""
    private val answers = ArrayDeque<IntArray>()

    private val tokenizer get() = asr.tokenizer

    /** The last step's log-mel frames encoded and prompt positions reused (bounded mode; tests). */
    internal val lastEncodedFrames: Int get() = windows?.encodedFrames ?: 0
    internal val lastReusedPositions: Int get() = kept?.reused ?: 0

    init {
        val limit = options.maxUtteranceSeconds
        if (kept != null && limit != null) kept.reserve = positions(limit + options.chunkSeconds)
    }

    /** KV positions a step of an utterance `seconds` long may need, with room for twice the text
     * of fast speech (8 tokens a second), so a stream allocates its cache once. */
    private fun positions(seconds: Double): Int {
        val b = asr.bundle
        val chunks = ceil(seconds * rate / b.hopLength / b.chunkFrames).toInt()
        val template = asr.promptIds(0, context, language).size + options.contextTokens + 1
        return template + chunks * b.tokensPerChunk + 8 * ceil(seconds).toInt() + cap(seconds)
    }

    private fun cap(seconds: Double): Int = options.maxNewTokens ?: asr.tokenCap(seconds)

    /**
     * Add audio; returns one update per step it completes (often none).
     *
     * @param samples mono float samples in [-1, 1]; any count, 0 included.
     * @param sampleRate their rate: the model's (16000); resample first otherwise.
     * @throws AudioException NaN or infinite samples, or another sample rate.
     * @throws IllegalStateException the session is finished.
     */
    fun feed(samples: FloatArray, sampleRate: Int = rate): List<StreamUpdate> = asr.guard {
        check(!closed) { "this stream is finished; start another with QwenAsr.stream()" }
        if (sampleRate != rate) throw AudioException("stream at $sampleRate Hz: the model takes $rate Hz; resample first")
        if (samples.any { !it.isFinite() }) throw AudioException("stream contains NaN or infinite samples")
        pending += samples // a copy: capture callbacks reuse their buffers
        val updates = ArrayList<StreamUpdate>()
        while (pending.size >= stepSamples) {
            val chunk = pending.copyOfRange(0, stepSamples)
            pending = pending.copyOfRange(stepSamples, pending.size)
            updates += step(chunk)
        }
        updates
    }

    /**
     * Decode what is left (the official `finish_streaming_transcribe`) and commit all of it.
     *
     * @return the final update: [StreamUpdate.committed] holds the whole transcript and
     *   [StreamUpdate.language] the language spoken longest, by utterance.
     * @throws IllegalStateException the session is already finished.
     */
    fun finish(): StreamUpdate = asr.guard {
        check(!closed) { "this stream is finished; start another with QwenAsr.stream()" }
        val start = System.nanoTime()
        if (pending.isNotEmpty()) {
            heard += pending.size
            audio += pending
            pending = FloatArray(0)
            if (audio.size >= asr.minSamples) decode(audio, prefix(final = true))
        }
        endUtterance(audio.size)
        close()
        update(start, isFinal = true)
    }

    /** End the stream without decoding what is left, freeing its native memory; idempotent. */
    override fun close() {
        closed = true
        kept?.close()
    }

    private fun startUtterance(samples: FloatArray, context: String) {
        audio = samples
        utteranceContext = context
        chunkId = 0
        raw = ""
        committedRaw = ""
        answers.clear()
        windows?.reset()
    }

    private fun step(chunk: FloatArray): StreamUpdate {
        val start = System.nanoTime()
        heard += chunk.size
        audio += chunk
        val limit = options.maxUtteranceSeconds
        if (limit != null && audio.size >= limit * rate) {
            cut()
            return update(start)
        }
        if (audio.size >= asr.minSamples) {
            decode(audio, prefix(final = false))
            chunkId += 1
            commitStable()
        }
        return update(start)
    }

    /** The official prefix rule, never rolled back past the committed text. */
    private fun prefix(final: Boolean): String {
        var prefix = ""
        if (chunkId >= options.unfixedChunks && raw.isNotEmpty()) {
            val ids = tokenizer.encode(raw)
            val k = options.unfixedTokens
            if (final) { // the official finish keeps at least one token and does not check U+FFFD
                prefix = tokenizer.decode(ids.copyOf(maxOf(1, ids.size - k)), skipSpecialTokens = false)
            } else { // roll back further while the prefix would end inside a UTF-8 character
                var end = maxOf(0, ids.size - k)
                prefix = tokenizer.decode(ids.copyOf(end), skipSpecialTokens = false)
                while (end > 0 && '\uFFFD' in prefix) {
                    end -= 1
                    prefix = tokenizer.decode(ids.copyOf(end), skipSpecialTokens = false)
                }
            }
        }
        if (prefix.length < committedRaw.length) prefix = committedRaw
        return prefix
    }

    /** One decode of the utterance's audio with the answer forced to start with `prefix`. */
    private fun decode(samples: FloatArray, prefix: String) {
        val cap = cap(samples.size.toDouble() / rate)
        val history = tokenizer.encode(prefix) // a loop may have begun in the forced prefix
        val generation = if (windows != null && kept != null) {
            val mel = asr.logMel(samples)
            val rows = windows.encode(mel, mel.size / asr.bundle.nMels)
            val prompt = asr.promptIds(rows.size / asr.bundle.hiddenSize, utteranceContext, language, prefix)
            kept.generate(prompt, rows, cap, history, options.repetitionGuard)
        } else {
            val (embeds, audioTokens) = asr.encode(samples)
            embeds.use {
                val prompt = asr.promptIds(audioTokens, utteranceContext, language, prefix)
                asr.generate(prompt, embeds, audioTokens, cap, history, options.repetitionGuard)
            }
        }
        raw = prefix + tokenizer.decode(generation.tokens.filter { it !in eos }.toIntArray())
    }

    /** Commit what the last `stableSteps` answers agree on. */
    private fun commitStable() {
        val steps = options.stableSteps ?: return
        val ids = tokenizer.encode(raw)
        answers.addLast(ids)
        while (answers.size > steps) answers.removeFirst()
        if (answers.size < steps) return
        val n = answers.minOf { it.size }
        var agreed = 0
        while (agreed < n && answers.all { it[agreed] == ids[agreed] }) agreed++
        val begin = textStart(ids) ?: return
        // Between words in every answer, as the Python session (streaming.py) cuts.
        while (agreed > begin && !answers.all { wordBoundary(it, agreed) }) agreed--
        if (agreed <= begin) return
        val candidate = tokenizer.decode(ids.copyOf(agreed), skipSpecialTokens = false)
        if ('\uFFFD' in candidate || candidate.length <= committedRaw.length) return
        if (candidate.startsWith(committedRaw)) {
            committedRaw = candidate
            commit(streamText(candidate))
        }
    }

    /** Index of the first text token (after `<asr_text>`, or 0 with a forced language). */
    private fun textStart(ids: IntArray): Int? {
        if (language != null) return 0
        val tag = ids.indexOf(asr.bundle.asrText)
        return if (tag < 0) null else tag + 1
    }

    /** Whether a cut before `ids[at]` falls between words (or there is nothing after it). */
    private fun wordBoundary(ids: IntArray, at: Int): Boolean {
        if (at >= ids.size) return true
        val before = tokenizer.decode(intArrayOf(ids[at - 1]))
        val after = tokenizer.decode(intArrayOf(ids[at]))
        if (after.isEmpty() || before.isEmpty()) return true
        val first = after.codePointAt(0)
        val last = before.codePointBefore(before.length)
        return TranscriptParser.isPySpace(first) || !isPyAlnum(first) || !isPyAlnum(last) ||
            TranscriptParser.writtenWithoutSpaces(last) || TranscriptParser.writtenWithoutSpaces(first)
    }

    /** End the utterance at its quietest 100 ms near the end. */
    private fun cut() {
        val lo = maxOf(asr.minSamples, audio.size - (StreamingOptions.CUT_SEARCH_SECONDS * rate).roundToInt())
        val at = Chunking.quietCut(audio, lo, audio.size, (StreamingOptions.CUT_WINDOW_SECONDS * rate).roundToInt())
        decode(audio.copyOf(at), committedRaw)
        val tail = endUtterance(at)
        val next = if (context.isNotEmpty()) TranscriptParser.joinTexts(listOf(context, tail)) else tail
        startUtterance(audio.copyOfRange(at, audio.size), next)
    }

    /** Commit the whole utterance (`samples` long); returns the tail of its text carried as context. */
    private fun endUtterance(samples: Int): String {
        val text = parsed(raw)
        val lang = language ?: TranscriptParser.parseTranscript(raw, null, markup = markup).language
        if (lang.isNotEmpty() && text.isNotEmpty()) spoken[lang] = (spoken[lang] ?: 0L) + samples
        commit(streamText(raw))
        done += text
        val ids = tokenizer.encode(text)
        val k = options.contextTokens
        val tail = if (k > 0 && ids.isNotEmpty()) tokenizer.decode(ids.copyOfRange(maxOf(0, ids.size - k), ids.size)) else ""
        return TranscriptParser.pyStrip(tail.trimStart('\uFFFD'))
    }

    private fun parsed(raw: String): String = TranscriptParser.parseTranscript(raw, language, markup = markup).text

    private fun streamText(raw: String): String = TranscriptParser.joinTexts(done + parsed(raw))

    /** Make `text` the committed text, appending only: what was committed stays. */
    private fun commit(text: String) {
        if (text.startsWith(committed)) {
            committed = text
            return
        }
        val new = TranscriptParser.pyStrip(uncommittedRaw())
        if (new.isNotEmpty()) committed = if (committed.isNotEmpty()) committed + TranscriptParser.separator(committed, new) + new else new
    }

    private fun uncommittedRaw(): String {
        val tail = TranscriptParser.stripControlTokens(raw.substring(minOf(committedRaw.length, raw.length)), markup)
        return tail.split(TranscriptParser.ASR_TEXT_TAG).last()
    }

    private fun update(start: Long, isFinal: Boolean = false): StreamUpdate {
        val previous = reported
        val full = if (!isFinal) streamText(raw) else committed
        var tentative: String
        if (full.startsWith(committed)) {
            tentative = full.substring(committed.length)
        } else {
            tentative = TranscriptParser.pyRstrip(uncommittedRaw())
            val stripped = TranscriptParser.pyStrip(tentative)
            if (stripped.isNotEmpty() && committed.isNotEmpty() && !(tentative.isNotEmpty() && TranscriptParser.isPySpace(tentative.codePointAt(0)))) {
                tentative = TranscriptParser.separator(committed, stripped) + stripped
            }
        }
        reported = committed
        val lang = if (isFinal && spoken.isNotEmpty()) {
            spoken.entries.maxByOrNull { it.value }!!.key // the first of equals, as Python's max
        } else {
            language ?: TranscriptParser.parseTranscript(raw, null, markup = markup).language
        }
        return StreamUpdate(
            committed, if (isFinal) "" else tentative, lang, heard.toDouble() / rate,
            committed.substring(previous.length), isFinal, (System.nanoTime() - start) / 1e9,
        )
    }

    internal companion object {
        /** Python's str.isalnum for one code point: letters, and digits and other numerics. */
        fun isPyAlnum(cp: Int): Boolean = Character.isLetter(cp) || when (Character.getType(cp)) {
            Character.DECIMAL_DIGIT_NUMBER.toInt(), Character.LETTER_NUMBER.toInt(), Character.OTHER_NUMBER.toInt() -> true
            else -> false
        }
    }
}
