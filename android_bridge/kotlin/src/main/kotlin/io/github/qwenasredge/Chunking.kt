package io.github.qwenasredge

import kotlin.math.abs

/**
 * Long recordings cut at quiet points, as the Python runtime's `chunking.split_at_quiet_points`
 * (after the official `split_audio_into_chunks`): while more than `maxSeconds` remain, the next
 * cut goes at the quietest sample of the quietest 100 ms window within the `searchSeconds` before
 * the limit; no chunk is shorter than `minSeconds` (1 s) nor than half the limit, except a
 * recording's only chunk. The chunks cover the recording exactly: no gap, overlap or padding.
 */
internal object Chunking {
    /** The shortest chunk of a multi-chunk recording: one encoder chunk (100 mel frames). */
    const val MIN_CHUNK_SECONDS = 1.0

    /** Where the chunks of `wav` start and end, as sample ranges `[start, end)` in time order. */
    fun split(
        wav: FloatArray,
        sampleRate: Int,
        maxSeconds: Double,
        searchSeconds: Double = 5.0,
        windowMs: Double = 100.0,
        minSeconds: Double = MIN_CHUNK_SECONDS,
    ): List<IntRange> {
        require(maxSeconds >= 2 * minSeconds && maxSeconds < Double.POSITIVE_INFINITY) {
            "maxSeconds must be at least ${2 * minSeconds}, got $maxSeconds"
        }
        // The same truncations as Python's int(): every length as the Python runtime computes it.
        val maxLen = (maxSeconds * sampleRate).toInt()
        val minLen = (minSeconds * sampleRate).toInt()
        val search = (searchSeconds * sampleRate).toInt()
        val win = maxOf(4, (windowMs / 1000.0 * sampleRate).toInt())
        val chunks = ArrayList<IntRange>()
        var start = 0
        while (wav.size - start > maxLen) {
            val rest = wav.size - start
            val hi = minOf(maxLen, rest - minLen)
            val lo = minOf(maxOf(minLen, maxLen / 2, maxLen - search), hi - 1)
            val cut = quietCut(wav, start + lo, start + hi, win)
            chunks += start until cut
            start = cut
        }
        if (wav.size > start) chunks += start until wav.size
        return chunks
    }

    /** The quietest sample of the quietest `win`-sample window in `wav[lo, hi)` (chunking.quiet_cut). */
    fun quietCut(wav: FloatArray, lo: Int, hi: Int, win: Int): Int {
        val n = hi - lo
        fun argminAbs(from: Int, to: Int): Int {
            var best = from
            for (i in from until to) if (abs(wav[i]) < abs(wav[best])) best = i
            return best
        }
        if (n <= win) return argminAbs(lo, hi)
        // Window sums from prefix sums in double (numpy convolves in float32: only near-ties,
        // which silence does not make, could pick another window).
        val prefix = DoubleArray(n + 1)
        for (i in 0 until n) prefix[i + 1] = prefix[i] + abs(wav[lo + i])
        var bestWindow = 0
        for (w in 1..n - win) if (prefix[w + win] - prefix[w] < prefix[bestWindow + win] - prefix[bestWindow]) bestWindow = w
        return argminAbs(lo + bestWindow, lo + bestWindow + win)
    }
}
