package io.github.qwenasredge.ort

import kotlin.concurrent.withLock

/**
 * onnxruntime's IO binding for one [OrtSession] ([OrtSession.ioBinding]): inputs and outputs
 * bound once, then [run] as often as needed. An output bound to a tensor ([bindOutput]) is written
 * into that tensor's memory; the same tensor may be bound as an input and an output, which makes
 * an in-place state such as a KV cache (`past.i` in, `present.i` out) when the graph writes its
 * output over its input (ScatterElements, GroupQueryAttention's cache; elementwise ops) — the
 * caller must know that the model does so.
 *
 * The binding references every tensor bound to it (and their wrapped buffers) until it is
 * unbound ([clearBoundInputs], [clearBoundOutputs]) or closed, so closing a bound tensor does not
 * free memory the binding still uses. Closing the session closes its bindings. After [close] every
 * member but [close] throws [IllegalStateException]. Its members exclude each other (a [close]
 * from another thread waits for a [run] in progress), and hold the session open while they run.
 */
class IoBinding internal constructor(private val session: OrtSession, handle: Long) : AutoCloseable {
    @Volatile private var handle: Long = handle
    private val inputs = HashMap<String, Tensor>()
    private val outputs = HashMap<String, Tensor>()

    /** [block] under the session's read lock, then this binding's monitor (always in that order). */
    private inline fun <T> guarded(block: () -> T): T = session.lock.readLock().withLock { synchronized(this) { block() } }

    private fun live(): Long {
        check(handle != 0L) { "the IoBinding is closed" }
        check(!session.isClosed) { "the IoBinding's OrtSession is closed" }
        return handle
    }

    private fun open(name: String, tensor: Tensor): Long {
        check(!tensor.isClosed) { "cannot bind '$name': the Tensor is closed" }
        return tensor.nativeHandle()
    }

    /**
     * Binds [tensor] to the graph input [name] (replacing an earlier binding of that name).
     * @throws OrtException for a name that is not an input of the model.
     */
    fun bindInput(name: String, tensor: Tensor) = guarded {
        NativeOrt.bind(live(), NativeOrt.BIND_INPUT, name, open(name, tensor))
        inputs[name] = tensor
    }

    /**
     * Binds the graph output [name] to [tensor]: runs write into its memory. Its type and shape
     * must be what the model produces.
     * @throws OrtException for a name that is not an output of the model (or at [run], a mismatch).
     */
    fun bindOutput(name: String, tensor: Tensor) = guarded {
        NativeOrt.bind(live(), NativeOrt.BIND_OUTPUT, name, open(name, tensor))
        outputs[name] = tensor
    }

    /**
     * Binds the graph output [name] to the CPU: onnxruntime allocates it at each [run]; read it
     * with [outputs].
     * @throws OrtException for a name that is not an output of the model.
     */
    fun bindOutputToCpu(name: String) = guarded {
        NativeOrt.bind(live(), NativeOrt.BIND_OUTPUT_CPU, name, 0L)
        outputs.remove(name)
        Unit
    }

    /** Runs the session with the bound inputs and outputs. @throws OrtException when the run fails (a missing input, say). */
    fun run() = guarded { NativeOrt.runBinding(live()) }

    /**
     * After [run]: every bound output by name, as new tensors that the caller closes. An output
     * bound to a tensor comes back as a new tensor over the same memory.
     */
    fun outputs(): Map<String, Tensor> = guarded {
        val result = NativeOrt.boundOutputs(live())
        @Suppress("UNCHECKED_CAST")
        val names = result[0] as Array<String>
        val handles = result[1] as LongArray
        val map = LinkedHashMap<String, Tensor>()
        try {
            for ((i, name) in names.withIndex()) {
                val h = handles[i]
                handles[i] = 0L
                map[name] = Tensor.adopt(h, outputs[name])
            }
        } catch (e: Throwable) {
            map.values.forEach { it.close() }
            handles.filter { it != 0L }.forEach { NativeOrt.releaseTensor(it) }
            throw e
        }
        map
    }

    /** Unbinds every input. */
    fun clearBoundInputs() = guarded {
        NativeOrt.clearBinding(live(), false)
        inputs.clear()
    }

    /** Unbinds every output. */
    fun clearBoundOutputs() = guarded {
        NativeOrt.clearBinding(live(), true)
        outputs.clear()
    }

    /** Releases the binding; idempotent. */
    override fun close() {
        guarded {
            val h = handle
            if (h == 0L) return
            handle = 0L
            NativeOrt.releaseBinding(h)
            inputs.clear()
            outputs.clear()
            session.forget(this)
        }
    }
}
