package io.github.qwenasredge.ort

import java.nio.ByteBuffer
import java.nio.charset.StandardCharsets
import java.util.concurrent.locks.ReentrantReadWriteLock
import kotlin.concurrent.withLock

/**
 * An onnxruntime inference session over one model (`.onnx` or `.ort`), opened with [open].
 *
 * Ownership: the caller closes the session; [close] also closes the [IoBinding]s it made. A
 * session opened from a ByteBuffer references that buffer until closed (onnxruntime reads the
 * model from it in place with `session.use_ort_model_bytes_directly=1`). After [close] every
 * member but [close] throws [IllegalStateException].
 *
 * Threads: [run] may be called from several threads at once (onnxruntime runs a session
 * concurrently); [close] waits for the runs in progress (its own bindings' included) and then
 * frees the session, so closing from another thread never frees memory a run is using.
 */
class OrtSession private constructor(handle: Long, private val model: ByteBuffer?) : AutoCloseable {
    @Volatile private var handle: Long = handle
    private val bindings = LinkedHashSet<IoBinding>() // guarded by itself

    /** Runs hold its read lock, [close] its write lock. */
    internal val lock = ReentrantReadWriteLock()

    /** [block] with the session's handle, the session kept open until it returns. */
    internal inline fun <T> using(block: (Long) -> T): T = lock.readLock().withLock { block(nativeHandle()) }

    /** The model's input names, in graph order. */
    val inputNames: List<String> = NativeOrt.sessionInputNames(handle).toList()

    /** The model's output names, in graph order. */
    val outputNames: List<String> = NativeOrt.sessionOutputNames(handle).toList()

    /** Openers. */
    companion object {
        /**
         * Opens the model file at [path].
         * @throws OrtException when the file is missing or not a model onnxruntime can load ("cannot
         *   open PATH: ..."), or a provider in [options] is not in this onnxruntime library.
         */
        @JvmStatic
        @JvmOverloads
        fun open(path: String, options: SessionOptions = SessionOptions()): OrtSession {
            Ort.load()
            return create(path.toByteArray(StandardCharsets.UTF_8), null, options)
        }

        /**
         * Opens the model in [model]'s remaining bytes (position to limit; the position is not
         * changed). A direct buffer (an mmap'd `.ort` file, say) is used in place and referenced
         * by the session until it is closed; a heap buffer is first copied into a direct one.
         * With `session.use_ort_model_bytes_directly=1` in [SessionOptions.config], onnxruntime
         * keeps reading the buffer after opening, so it must stay unchanged until [close].
         * @throws IllegalArgumentException for an empty buffer.
         * @throws OrtException when the bytes are not a model onnxruntime can load.
         */
        @JvmStatic
        @JvmOverloads
        fun open(model: ByteBuffer, options: SessionOptions = SessionOptions()): OrtSession {
            require(model.hasRemaining()) { "the model buffer is empty" }
            Ort.load()
            val direct = if (model.isDirect) {
                model.slice()
            } else {
                ByteBuffer.allocateDirect(model.remaining()).put(model.duplicate()).also { it.flip() }
            }
            return create(null, direct, options)
        }

        private fun create(path: ByteArray?, model: ByteBuffer?, options: SessionOptions): OrtSession {
            val config = options.config.entries.toList()
            val providers = options.providers
            val handle = NativeOrt.openSession(
                path, model, model?.position() ?: 0, model?.remaining() ?: 0,
                options.intraOpThreads, options.optimizationLevel,
                config.map { it.key }.toTypedArray(), config.map { it.value }.toTypedArray(),
                providers.map { it.name }.toTypedArray(),
                providers.map { p -> p.options.keys.toTypedArray() }.toTypedArray(),
                providers.map { p -> p.options.values.toTypedArray() }.toTypedArray(),
            )
            try {
                return OrtSession(handle, model)
            } catch (e: Throwable) {
                NativeOrt.closeSession(handle)
                throw e
            }
        }
    }

    internal fun nativeHandle(): Long {
        check(handle != 0L) { "the OrtSession is closed" }
        return handle
    }

    /** true once closed. */
    val isClosed: Boolean
        get() = handle == 0L

    /**
     * Runs the model on [inputs] (name to tensor; every graph input the outputs need) and
     * returns the requested [outputs] by name, in request order, as new tensors allocated by
     * onnxruntime that the caller closes. The input tensors stay open and unchanged.
     * @throws IllegalArgumentException for no outputs.
     * @throws IllegalStateException when the session or an input tensor is closed.
     * @throws OrtException for an unknown input or output name, a wrong type or shape, a failed run.
     */
    @JvmOverloads
    fun run(inputs: Map<String, Tensor>, outputs: List<String> = outputNames): Map<String, Tensor> = using { session ->
        require(outputs.isNotEmpty()) { "run needs at least one output name" }
        val names = inputs.keys.toTypedArray()
        val tensors = inputs.values.toList()
        val handles = LongArray(tensors.size) { i ->
            check(!tensors[i].isClosed) { "input '${names[i]}' is a closed Tensor" }
            tensors[i].nativeHandle()
        }
        // An output may share an input's memory (an Identity from a graph input): keep wrapped inputs alive.
        val keepAlive = tensors.mapNotNull { it.keepAlive }.takeIf { it.isNotEmpty() }
        val results = NativeOrt.run(session, names, handles, outputs.toTypedArray())
        val map = LinkedHashMap<String, Tensor>()
        try {
            for ((i, h) in results.withIndex()) {
                results[i] = 0L
                map[outputs[i]] = Tensor.adopt(h, keepAlive)
            }
        } catch (e: Throwable) {
            map.values.forEach { it.close() }
            results.filter { it != 0L }.forEach { NativeOrt.releaseTensor(it) }
            throw e
        }
        map
    }

    /**
     * A new IO binding on this session (closed by the caller, or by [close] of the session).
     * @throws OrtException when onnxruntime cannot create one.
     */
    fun ioBinding(): IoBinding = using { session ->
        val binding = IoBinding(this, NativeOrt.createBinding(session))
        synchronized(bindings) { bindings.add(binding) }
        binding
    }

    internal fun forget(binding: IoBinding) {
        synchronized(bindings) { bindings.remove(binding) }
    }

    /** Waits for runs in progress, closes the session's IO bindings, then the session; idempotent. */
    override fun close() {
        lock.writeLock().withLock {
            val h = handle
            if (h == 0L) return
            synchronized(bindings) { bindings.toList() }.forEach { it.close() }
            handle = 0L
            NativeOrt.closeSession(h)
        }
    }

    /** `OrtSession(inputs=[...], outputs=[...])`. */
    override fun toString(): String =
        if (handle == 0L) "OrtSession(closed)" else "OrtSession(inputs=$inputNames, outputs=$outputNames${if (model != null) ", from bytes" else ""})"
}
