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
     * @param prompt the prompt ids, the audio placeholder repeated once per audio embedding row.
     * @param audioEmbeds the encoder's `audio_embeds` output, (1, A, H) float32.
     * @param audioLength its valid rows (A' <= A), the number of placeholders in `prompt`.
     * @param maxNewTokens the cap on generated ids, the stop id included.
     * @param history ids already said (a stream's forced prefix): the repetition guard looks at
     *   them with the new ones, so a loop may begin in them, but only new ids continue it.
     * @param useGuard stop a loop with the repetition guard (off: loops run to the cap).
     * @throws IllegalArgumentException the prompt and the cap exceed the model's positions.
     */
    fun generate(
        prompt: IntArray,
        audioEmbeds: Tensor,
        audioLength: Int,
        maxNewTokens: Int,
        history: IntArray = IntArray(0),
        useGuard: Boolean = true,
    ): Generation {
        val capacity = prompt.size + maxNewTokens
        require(capacity <= kv.maxPositions) {
            "$capacity positions (prompt ${prompt.size} + cap $maxNewTokens) exceed the model's maximum of ${kv.maxPositions}"
        }
        val hidden = audioEmbeds.shape[2]
        val owned = ArrayList<Tensor>()
        fun <T : Tensor> keep(t: T): T = t.also { owned += it }
        try {
            session.ioBinding().use { io ->
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
                val logits = keep(Tensor.allocate(ElementType.FLOAT, longArrayOf(1, 1, bundle.vocabSize.toLong())))
                val nextToken = keep(Tensor.allocate(ElementType.INT64, longArrayOf(1, 1)))
                io.bindOutput("logits", logits)
                io.bindOutput("next_token", nextToken)

                var length = prompt.size
                io.bindInput("input_ids", keep(Tensor.fromLongs(LongArray(prompt.size) { prompt[it].toLong() }, longArrayOf(1, prompt.size.toLong()))))
                // seqlens_k is the GroupQueryAttention convention: the length so far minus one.
                io.bindInput("seqlens_k", keep(Tensor.fromInts(intArrayOf(length - 1), longArrayOf(1))))
                io.bindInput("total_sequence_length", keep(Tensor.fromInts(intArrayOf(length), longArrayOf())))
                io.bindInput("audio_embeds", audioEmbeds)
                io.bindInput("audio_embed_lens", keep(Tensor.fromLongs(longArrayOf(audioLength.toLong()), longArrayOf(1))))
                var start = System.nanoTime()
                io.run()
                val prefillSeconds = (System.nanoTime() - start) / 1e9
                // Decode steps read no audio: a (1, 1, H) zero tensor of length 0 satisfies the graph.
                io.bindInput("audio_embeds", keep(Tensor.fromFloats(FloatArray(hidden.toInt()), longArrayOf(1, 1, hidden))))
                io.bindInput("audio_embed_lens", keep(Tensor.fromLongs(longArrayOf(0), longArrayOf(1))))
                val stepIds = keep(Tensor.fromLongs(longArrayOf(0), longArrayOf(1, 1)))
                io.bindInput("input_ids", stepIds)
                val seqlens = keep(Tensor.fromInts(intArrayOf(0), longArrayOf(1)))
                val total = keep(Tensor.fromInts(intArrayOf(0), longArrayOf()))
                io.bindInput("seqlens_k", seqlens)
                io.bindInput("total_sequence_length", total)

                val out = ArrayList<Int>()
                val said = ArrayList<Int>(history.toList()) // history + out, what the guard sees
                val steps = ArrayList<Double>()
                var reason: String
                while (true) {
                    val token = nextToken.buffer.getLong(0).toInt()
                    out += token
                    if (token in stopIds) { reason = "stop"; break }
                    said += token
                    val loop = if (useGuard) guard.find(said, history.size) else null
                    if (loop != null) {
                        // As the official repair keeps one copy; a loop begun in the history keeps no new ids.
                        val kept = maxOf(loop.keep - history.size, 0)
                        while (out.size > kept) out.removeAt(out.size - 1)
                        reason = "repetition"
                        break
                    }
                    if (out.size >= maxNewTokens) { reason = "length"; break }
                    length += 1
                    stepIds.buffer.putLong(0, token.toLong())
                    seqlens.buffer.putInt(0, length - 1)
                    total.buffer.putInt(0, length)
                    start = System.nanoTime()
                    io.run()
                    steps += (System.nanoTime() - start) / 1e9
                }
                return Generation(out.toIntArray(), reason, prefillSeconds, steps.toDoubleArray())
            }
        } finally {
            owned.forEach { it.close() }
        }
    }

    private fun zero(tensor: Tensor) {
        val b = tensor.buffer
        for (i in 0 until b.capacity() / 8) b.putLong(i * 8, 0L)
    }
}
