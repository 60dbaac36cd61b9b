package io.github.qwenasredge

import io.github.qwenasredge.ort.Tensor

/**
 * The windowed encoder on a growing clip, encoding only the windows whose features changed: a
 * port of runtime/encoder_windows.py, whose docstring says why the reuse is exact (an 8 s window's
 * embeddings depend on its own log-mel frames alone, and frames are compared, not assumed final).
 */
internal class EncoderWindows(private val asr: QwenAsr) {
    private val bundle = asr.bundle
    private val nMels = bundle.nMels
    private val chunkFrames = bundle.chunkFrames
    private val windowTokens = bundle.windowTokens
    private val windowFrames = bundle.windowTokens / bundle.tokensPerChunk * bundle.chunkFrames
    private val frames = ArrayList<FloatArray>() // per window: the (n_mels, <= windowFrames) it was encoded from
    private val embeds = ArrayList<FloatArray>() // per window: its (rows, H) embeddings, row-major

    /** Frames the last call encoded (what reuse saved shows against the clip's). */
    var encodedFrames = 0
        private set

    init {
        require(bundle.encoderAttention == "windowed") { "the encoder attends over the ${bundle.encoderAttention} clip, not in windows" }
    }

    fun reset() {
        frames.clear()
        embeds.clear()
    }

    private fun window(features: FloatArray, total: Int, k: Int): FloatArray {
        val from = k * windowFrames
        val width = minOf(windowFrames, total - from)
        val out = FloatArray(nMels * width)
        for (m in 0 until nMels) System.arraycopy(features, m * total + from, out, m * width, width)
        return out
    }

    /** (n_mels, T) row-major log-mel of the whole clip -> (A, H) row-major embeddings, as one call. */
    fun encode(features: FloatArray, total: Int): FloatArray {
        val windows = (total + windowFrames - 1) / windowFrames
        var first = 0
        while (first < minOf(windows, frames.size) && frames[first].contentEquals(window(features, total, first))) first++
        first = minOf(first, windows - 1) // the open window is encoded at every call with new frames
        if (first < windows && total > chunkFrames && total - first * windowFrames <= chunkFrames) {
            // A tail of one chunk alone would be encoded as a one-chunk clip (unpadded convolutions);
            // inside the whole clip it is a zero-padded tail chunk: take the window before it along.
            first -= 1
        }
        val from = first * windowFrames
        val width = total - from
        val tail = FloatArray(nMels * width)
        for (m in 0 until nMels) System.arraycopy(features, m * total + from, tail, m * width, width)
        val (rows, count) = asr.encodeFeatures(tail, width)
        encodedFrames = width
        val hidden = bundle.hiddenSize
        while (frames.size > first) { frames.removeAt(frames.size - 1); embeds.removeAt(embeds.size - 1) }
        for (k in first until windows) {
            val start = (k - first) * windowTokens
            val end = minOf(count, start + windowTokens)
            frames += window(features, total, k)
            embeds += rows.copyOfRange(start * hidden, end * hidden)
        }
        val out = FloatArray(embeds.sumOf { it.size })
        var at = 0
        for (e in embeds) { System.arraycopy(e, 0, out, at, e.size); at += e.size }
        return out
    }
}

/**
 * One stream's decoder cache kept between steps, for prompts that share their start (the system
 * turn and the audio of completed encoder windows stay; the open window and the text after it
 * change): a port of runtime/decoding.py's `KeptPrefix`. The next prompt is computed from the
 * first position where its ids or audio rows differ (compared exactly) on top of the cache.
 */
internal class KeptPrefix(private val decoder: GreedyDecoder, private val bundle: MobileBundle) : AutoCloseable {
    private var cache: GreedyDecoder.Cache? = null
    private var ids = IntArray(0)
    private var audio = FloatArray(0) // (placeholders among ids, H) row-major

    /** Positions to allocate at least (what the stream expects to need). */
    var reserve = 0

    /** Prompt positions the last call did not compute (held in the cache). */
    var reused = 0
        private set

    /**
     * Greedy decoding of `prompt` (placeholders once per row of `rows`, (A, H) row-major) on the
     * kept cache, computing only what it does not hold; see [GreedyDecoder.generate].
     */
    fun generate(prompt: IntArray, rows: FloatArray, cap: Int, history: IntArray, useGuard: Boolean): Generation {
        val hidden = bundle.hiddenSize
        val capacity = prompt.size + cap
        var held = cache
        if (held == null || held.capacity < capacity) {
            // Twice the need, so a growing stream re-allocates (and recomputes from position 0)
            // a few times in its first utterance, not at every step.
            held?.close()
            cache = null
            held = decoder.Cache(minOf(bundle.kvCache.maxPositions, maxOf(2 * capacity, reserve)))
            cache = held
            ids = IntArray(0)
            audio = FloatArray(0)
        }
        val isAudio = BooleanArray(prompt.size) { prompt[it] == bundle.audioPad }
        val placeholders = IntArray(isAudio.count { it }).also { var k = 0; for (i in prompt.indices) if (isAudio[i]) it[k++] = i }
        // The longest start whose ids and audio rows both match; at least the last position is computed.
        var same = minOf(ids.size, prompt.size - 1)
        for (i in 0 until same) if (ids[i] != prompt[i]) { same = i; break }
        val heldRows = minOf(isAudio.take(same).count { it }, audio.size / hidden)
        for (r in 0 until heldRows) {
            var equal = true
            for (j in 0 until hidden) if (audio[r * hidden + j] != rows[r * hidden + j]) { equal = false; break }
            if (!equal) { same = placeholders[r]; break } // cut before the first audio row that changed
        }
        val firstAudio = isAudio.take(same).count { it }
        ids = prompt.copyOf()
        audio = rows.copyOf()
        reused = same
        val newRows = placeholders.size - firstAudio
        val tail = prompt.copyOfRange(same, prompt.size)
        if (newRows == 0) return decoder.generate(held, tail, prompt.size, null, 0, cap, history, useGuard)
        return Tensor.fromFloats(rows.copyOfRange(firstAudio * hidden, rows.size), longArrayOf(1, newRows.toLong(), hidden.toLong())).use {
            decoder.generate(held, tail, prompt.size, it, newRows, cap, history, useGuard)
        }
    }

    override fun close() {
        cache?.close()
        cache = null
    }
}
