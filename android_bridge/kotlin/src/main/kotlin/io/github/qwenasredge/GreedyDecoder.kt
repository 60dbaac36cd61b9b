package io.github.qwenasredge

import io.github.qwenasredge.ort.ElementType
import io.github.qwenasredge.ort.OrtSession
import io.github.qwenasredge.ort.Tensor
import io.github.qwenasredge.text.RepetitionGuard

/** What one [GreedyDecoder.generate] call produced. */
class Generation(
    /** The generated ids, the stop id included; cut after the loop's first unit on "repetition". */
    val tokens: IntArray,
    /** "stop" (a stop id), "length" (the token cap) or "repetition" (the guard found a loop). */
    val finishReason: String,
    val prefillSeconds: Double,
    /** One entry per decode step after the prefill. */
    val stepSeconds: DoubleArray,
)

/**
 * Greedy decoding of one prompt on the decoder graph with a pre-allocated KV cache, as
 * runtime/decoding.py does for a batch of one: one prefill call over the prompt (the audio
 * embeddings bound straight from the encoder's output tensor), then one call per token in which
 * only the new id and two int32 lengths go in and only the in-graph ArgMax (`next_token`) is read.
 * Each layer's key and value buffer is bound as both `past_key_values.i.*` and `present.i.*`: the
 * graph writes the new rows in place, so a step copies neither the cache nor the logits.
 */
internal class GreedyDecoder(private val session: OrtSession, private val bundle: MobileBundle) {
    private val kv = bundle.kvCache
    private val stopIds = bundle.eos.toSet()
    private val guard = bundle.guard.let { RepetitionGuard(it.maxUnit, it.minRepeats, it.minTokens) }

    /**
     * A KV cache of `capacity` positions bound as past and present, with the outputs and the
     * per-step inputs bound: one per transcription, or kept across a stream's steps ([KeptPrefix]).
     */
    inner class Cache(val capacity: Int) : AutoCloseable {
        private val owned = ArrayList<Tensor>()
        private fun <T : Tensor> keep(t: T): T = t.also { owned += it }
        val io = session.ioBinding()
        val nextToken: Tensor
        val stepIds: Tensor
        val seqlens: Tensor
        val total: Tensor
        private val hidden = bundle.hiddenSize.toLong()
        val noAudio: Tensor
        val noAudioLength: Tensor

        init {
            require(capacity <= kv.maxPositions) { "$capacity positions exceed the model's maximum of ${kv.maxPositions}" }
            try {
                val cacheShape = longArrayOf(1, kv.numKvHeads.toLong(), capacity.toLong(), kv.headDim.toLong())
                for (layer in 0 until kv.numLayers) {
                    val (pastKey, pastValue, presentKey, presentValue) = kv.names(layer)
                    for ((past, present) in listOf(pastKey to presentKey, pastValue to presentValue)) {
                        // GroupQueryAttention never reads rows it has not written; the portable graph
                        // does (with zero weight), and 0 x NaN garbage would be NaN.
                        val buffer = keep(Tensor.allocate(ElementType.FLOAT, cacheShape))
                        if (bundle.attention != "gqa") zero(buffer)
                        io.bindInput(past, buffer)
                        io.bindOutput(present, buffer)
                    }
                }
                io.bindOutput("logits", keep(Tensor.allocate(ElementType.FLOAT, longArrayOf(1, 1, bundle.vocabSize.toLong()))))
                nextToken = keep(Tensor.allocate(ElementType.INT64, longArrayOf(1, 1)))
                io.bindOutput("next_token", nextToken)
                stepIds = keep(Tensor.fromLongs(longArrayOf(0), longArrayOf(1, 1)))
                seqlens = keep(Tensor.fromInts(intArrayOf(0), longArrayOf(1)))
                total = keep(Tensor.fromInts(intArrayOf(0), longArrayOf()))
                // Decode steps read no audio: a (1, 1, H) zero tensor of length 0 satisfies the graph.
                noAudio = keep(Tensor.fromFloats(FloatArray(hidden.toInt()), longArrayOf(1, 1, hidden)))
                noAudioLength = keep(Tensor.fromLongs(longArrayOf(0), longArrayOf(1)))
            } catch (e: Throwable) {
                close()
                throw e
            }
        }

        override fun close() {
            io.close()
            owned.forEach { it.close() }
        }
    }

    /**
     * Greedy ids after a prompt of which `ids` are the last positions to compute: the whole
     * prompt on a fresh [Cache], or what follows the positions a kept cache holds (the rest of
     * the prompt's length is then already in it).
     *
     * @param cache holds at least `length + maxNewTokens` positions.
     * @param ids the prompt positions to compute, the audio placeholder once per row of `audio`.
     * @param length the whole prompt's length.
     * @param audio (1, A, H) float32 embeddings of the placeholders among `ids` (the encoder's
     *   output tensor, say), or null when `ids` hold none.
     * @param audioLength the valid rows of `audio`.
     * @param maxNewTokens the cap on generated ids, the stop id included.
     * @param history ids already said (a stream's forced prefix): the repetition guard looks at
     *   them with the new ones, so a loop may begin in them, but only new ids continue it.
     * @param useGuard stop a loop with the repetition guard (off: loops run to the cap).
     * @throws IllegalArgumentException the prompt and the cap exceed the cache.
     */
    fun generate(
        cache: Cache,
        ids: IntArray,
        length: Int,
        audio: Tensor?,
        audioLength: Int,
        maxNewTokens: Int,
        history: IntArray = IntArray(0),
        useGuard: Boolean = true,
    ): Generation {
        require(length + maxNewTokens <= cache.capacity) {
            "$length + $maxNewTokens positions (prompt + cap) exceed the cache's ${cache.capacity}"
        }
        val io = cache.io
        Tensor.fromLongs(LongArray(ids.size) { ids[it].toLong() }, longArrayOf(1, ids.size.toLong())).use { input ->
            Tensor.fromLongs(longArrayOf(audioLength.toLong()), longArrayOf(1)).use { audioLengths ->
                io.bindInput("input_ids", input)
                // seqlens_k is the GroupQueryAttention convention: the length so far minus one.
                cache.seqlens.buffer.putInt(0, length - 1)
                cache.total.buffer.putInt(0, length)
                io.bindInput("seqlens_k", cache.seqlens)
                io.bindInput("total_sequence_length", cache.total)
                io.bindInput("audio_embeds", audio ?: cache.noAudio)
                io.bindInput("audio_embed_lens", if (audio != null) audioLengths else cache.noAudioLength)
                val start = System.nanoTime()
                io.run()
                val prefillSeconds = (System.nanoTime() - start) / 1e9
                io.bindInput("audio_embeds", cache.noAudio)
                io.bindInput("audio_embed_lens", cache.noAudioLength)
                io.bindInput("input_ids", cache.stepIds)
                return loop(cache, length, maxNewTokens, history, useGuard, prefillSeconds)
            }
        }
    }

    private fun loop(cache: Cache, promptLength: Int, maxNewTokens: Int, history: IntArray, useGuard: Boolean, prefillSeconds: Double): Generation {
        var length = promptLength
        val out = ArrayList<Int>()
        // history + out, what the guard sees: one array for the whole call (find runs every step).
        val said = history.copyOf(history.size + maxNewTokens)
        var saidSize = history.size
        val steps = ArrayList<Double>()
        var reason: String
        while (true) {
            val token = cache.nextToken.buffer.getLong(0).toInt()
            out += token
            if (token in stopIds) { reason = "stop"; break }
            said[saidSize++] = token
            val loop = if (useGuard) guard.find(said, history.size, saidSize) else null
            if (loop != null) {
                // As the official repair keeps one copy; a loop begun in the history keeps no new ids.
                val kept = maxOf(loop.keep - history.size, 0)
                while (out.size > kept) out.removeAt(out.size - 1)
                reason = "repetition"
                break
            }
            if (out.size >= maxNewTokens) { reason = "length"; break }
            length += 1
            cache.stepIds.buffer.putLong(0, token.toLong())
            cache.seqlens.buffer.putInt(0, length - 1)
            cache.total.buffer.putInt(0, length)
            val start = System.nanoTime()
            cache.io.run()
            steps += (System.nanoTime() - start) / 1e9
        }
        return Generation(out.toIntArray(), reason, prefillSeconds, steps.toDoubleArray())
    }

    /** Greedy decoding of one whole prompt on a cache of its own (see [generate]). */
    fun generate(
        prompt: IntArray,
        audio: Tensor,
        audioLength: Int,
        maxNewTokens: Int,
        history: IntArray = IntArray(0),
        useGuard: Boolean = true,
    ): Generation {
        val capacity = prompt.size + maxNewTokens
        require(capacity <= kv.maxPositions) {
            "$capacity positions (prompt ${prompt.size} + cap $maxNewTokens) exceed the model's maximum of ${kv.maxPositions}"
        }
        return Cache(capacity).use { generate(it, prompt, prompt.size, audio, audioLength, maxNewTokens, history, useGuard) }
    }

    private fun zero(tensor: Tensor) {
        val b = tensor.buffer
        for (i in 0 until b.capacity() / 8) b.putLong(i * 8, 0L)
    }
}
