package io.github.qwenasredge.text

/**
 * A loop at the end of a token list (runtime/repetition.py's Loop).
 *
 * @property start index of its first token: the earliest from which the list is periodic to its end.
 * @property unit its period in tokens.
 * @property repeats whole units from [start] to the end.
 */
data class Loop(val start: Int, val unit: Int, val repeats: Int) {
    /** How many tokens to keep: up to the end of the loop's first unit. */
    val keep: Int get() = start + unit
}

/**
 * Stops greedy decoding as soon as the output's last tokens are a loop (runtime/repetition.py):
 * the tail is a loop when a unit of p tokens (1 <= p <= [maxUnit]) repeats at least
 * max([minRepeats], ceil([minTokens] / p)) times in a row.
 */
class RepetitionGuard(val maxUnit: Int = 32, val minRepeats: Int = 5, val minTokens: Int = 80) {
    init {
        require(maxUnit >= 1 && minTokens >= 1 && minRepeats >= 2) {
            "repetition guard needs max_unit >= 1, min_repeats >= 2 and min_tokens >= 1; got $maxUnit, $minRepeats, $minTokens"
        }
    }

    /** Repeats in a row that make a unit of [unit] tokens a loop. */
    fun repeatsNeeded(unit: Int): Int = maxOf(minRepeats, (minTokens + unit - 1) / unit)

    /** Tokens the loop of each unit length spans (index unit - 1). */
    private val spans = IntArray(maxUnit) { (it + 1) * repeatsNeeded(it + 1) }

    /** The loop the tail of [tokens] (its first [size] entries) is, or null; tokens before
     * [newFrom] are history: a loop may begin there, but only a tail that reaches past it counts. */
    fun find(tokens: IntArray, newFrom: Int = 0, size: Int = tokens.size): Loop? {
        val n = size
        if (n <= newFrom) return null
        for (unit in 1..maxUnit) {
            val span = spans[unit - 1]
            if (span > n) continue // a longer unit may still fit: spans are not monotonic in the unit
            var i = n - 1
            val bound = n - span + unit
            while (i >= bound && tokens[i] == tokens[i - unit]) i--
            if (i >= bound) continue
            while (i >= unit && tokens[i] == tokens[i - unit]) i--
            val start = i - unit + 1
            return Loop(start, unit, (n - start) / unit)
        }
        return null
    }

    fun find(tokens: List<Int>, newFrom: Int = 0): Loop? = find(tokens.toIntArray(), newFrom)

    companion object {
        /** The guard transcription uses unless told otherwise. */
        val DEFAULT = RepetitionGuard()
    }
}
