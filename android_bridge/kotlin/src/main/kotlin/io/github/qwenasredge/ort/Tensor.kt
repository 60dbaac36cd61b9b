package io.github.qwenasredge.ort

import java.nio.ByteBuffer
import java.nio.ByteOrder

/**
 * A CPU tensor held by onnxruntime (an `OrtValue`): element [type], [shape] and its memory as a
 * direct [buffer]. A tensor either wraps a caller's direct ByteBuffer without copying ([wrap]),
 * owns memory from onnxruntime's CPU allocator ([allocate], [fromFloats], ..., the outputs of
 * [OrtSession.run] and [IoBinding.outputs]), or shares another tensor's memory (a bound output).
 *
 * Ownership: whoever creates or receives a tensor closes it; [close] releases the `OrtValue` (and
 * the memory when nothing else shares it). A wrapped buffer is referenced by the tensor (and by
 * any binding or output that uses it), so it cannot be collected while in use. After [close]
 * every member throws [IllegalStateException]; [close] itself may be called again.
 * Not thread-safe: use one tensor from one thread at a time.
 */
class Tensor private constructor(handle: Long, internal val keepAlive: Any?) : AutoCloseable {
    private var handle: Long = handle

    /** The element type. */
    val type: ElementType

    private val dims: LongArray

    init {
        try {
            type = ElementType.fromOnnx(NativeOrt.tensorType(handle))
            dims = NativeOrt.tensorShape(handle)
        } catch (e: IllegalArgumentException) {
            NativeOrt.releaseTensor(handle)
            throw OrtException("cannot use a tensor: ${e.message}")
        } catch (e: RuntimeException) {
            NativeOrt.releaseTensor(handle)
            throw e
        }
    }

    /** The shape (a copy); empty for a scalar (rank 0). */
    val shape: LongArray
        get() {
            checkOpen()
            return dims.clone()
        }

    /** The number of elements: the product of [shape] (1 for a scalar). */
    val elementCount: Long
        get() {
            checkOpen()
            return dims.fold(1L) { n, d -> n * d }
        }

    /**
     * The tensor's own memory: a new direct ByteBuffer view each call (position 0, limit the
     * byte size, native byte order) over the same memory. Writing to it changes the tensor.
     * Valid until [close]; using it afterwards is undefined (it points at freed memory).
     */
    val buffer: ByteBuffer
        get() {
            checkOpen()
            val view = NativeOrt.tensorBuffer(handle) ?: ByteBuffer.allocateDirect(0)
            return view.order(ByteOrder.nativeOrder())
        }

    /** true once closed. */
    val isClosed: Boolean
        get() = handle == 0L

    internal fun nativeHandle(): Long {
        checkOpen()
        return handle
    }

    private fun checkOpen() {
        check(handle != 0L) { "the Tensor is closed" }
    }

    private fun requireType(expected: ElementType) {
        checkOpen()
        require(type == expected) { "the tensor is $type ${dims.contentToString()}, not $expected" }
    }

    /** A copy of the elements of a FLOAT tensor. @throws IllegalArgumentException for another type. */
    fun floats(): FloatArray {
        requireType(ElementType.FLOAT)
        val out = FloatArray(count())
        buffer.asFloatBuffer().get(out)
        return out
    }

    /** A copy of the elements of an INT64 tensor. @throws IllegalArgumentException for another type. */
    fun longs(): LongArray {
        requireType(ElementType.INT64)
        val out = LongArray(count())
        buffer.asLongBuffer().get(out)
        return out
    }

    /** A copy of the elements of an INT32 tensor. @throws IllegalArgumentException for another type. */
    fun ints(): IntArray {
        requireType(ElementType.INT32)
        val out = IntArray(count())
        buffer.asIntBuffer().get(out)
        return out
    }

    /** A copy of the bytes of the tensor (any type, native byte order). */
    fun bytes(): ByteArray {
        checkOpen()
        val view = buffer
        val out = ByteArray(view.remaining())
        view.get(out)
        return out
    }

    private fun count(): Int {
        val n = elementCount
        require(n <= Int.MAX_VALUE) { "the tensor has $n elements, more than an array holds" }
        return n.toInt()
    }

    /** Releases the tensor; idempotent. */
    override fun close() {
        val h = handle
        if (h != 0L) {
            handle = 0L
            NativeOrt.releaseTensor(h)
        }
    }

    /** `Tensor(FLOAT [1, 3])`, or `Tensor(closed)`. */
    override fun toString(): String = if (handle == 0L) "Tensor(closed)" else "Tensor($type ${dims.contentToString()})"

    /** Factories. */
    companion object {
        /** A tensor over a native handle from NativeOrt; releases it if it cannot be used. */
        internal fun adopt(handle: Long, keepAlive: Any? = null): Tensor = Tensor(handle, keepAlive)

        internal fun byteCount(type: ElementType, shape: LongArray): Long {
            var n = type.byteSize.toLong()
            for ((i, d) in shape.withIndex()) {
                require(d >= 0) { "dimension $i of shape ${shape.contentToString()} is negative" }
                require(d == 0L || n <= Long.MAX_VALUE / d) { "shape ${shape.contentToString()} is too large" }
                n *= d
            }
            return n
        }

        /**
         * A tensor over [buffer]'s remaining bytes (position to limit), without a copy. The buffer
         * must be direct, hold exactly `product(shape) * type.byteSize` remaining bytes and, for
         * multi-byte types, be in native byte order (`buffer.order(ByteOrder.nativeOrder())`). The
         * tensor references the buffer until closed (and while bound or shared by an output); its
         * memory must not be freed or unmapped meanwhile.
         * @throws IllegalArgumentException for a heap buffer, a wrong size or byte order, a negative dimension.
         */
        @JvmStatic
        fun wrap(buffer: ByteBuffer, type: ElementType, shape: LongArray): Tensor {
            require(buffer.isDirect) { "a tensor wraps a direct ByteBuffer (ByteBuffer.allocateDirect), not a heap one" }
            val bytes = byteCount(type, shape)
            require(bytes == buffer.remaining().toLong()) {
                "a $type tensor of shape ${shape.contentToString()} needs $bytes bytes; the buffer has ${buffer.remaining()} remaining"
            }
            require(type.byteSize == 1 || buffer.order() == ByteOrder.nativeOrder()) {
                "the buffer is ${buffer.order()}; set buffer.order(ByteOrder.nativeOrder()) (tensors are in native byte order)"
            }
            Ort.load()
            val handle = NativeOrt.wrapTensor(buffer, buffer.position(), buffer.remaining(), type.onnxType, shape.clone())
            return Tensor(handle, buffer)
        }

        /**
         * A tensor in memory from onnxruntime's CPU allocator; contents uninitialised.
         * @throws IllegalArgumentException for a negative dimension.
         * @throws OrtException when onnxruntime cannot allocate it.
         */
        @JvmStatic
        fun allocate(type: ElementType, shape: LongArray): Tensor {
            byteCount(type, shape)
            Ort.load()
            return Tensor(NativeOrt.allocateTensor(type.onnxType, shape.clone()), null)
        }

        private fun checkCount(size: Int, shape: LongArray) {
            val n = shape.fold(1L) { acc, d ->
                require(d >= 0) { "shape ${shape.contentToString()} has a negative dimension" }
                acc * d
            }
            require(n == size.toLong()) { "shape ${shape.contentToString()} holds $n elements; ${size} values were given" }
        }

        /** A FLOAT tensor (allocated by onnxruntime) holding a copy of [values]. @throws IllegalArgumentException when the count differs from the shape's. */
        @JvmStatic
        fun fromFloats(values: FloatArray, shape: LongArray): Tensor {
            checkCount(values.size, shape)
            return allocate(ElementType.FLOAT, shape).also { it.buffer.asFloatBuffer().put(values) }
        }

        /** An INT64 tensor (allocated by onnxruntime) holding a copy of [values]. @throws IllegalArgumentException when the count differs from the shape's. */
        @JvmStatic
        fun fromLongs(values: LongArray, shape: LongArray): Tensor {
            checkCount(values.size, shape)
            return allocate(ElementType.INT64, shape).also { it.buffer.asLongBuffer().put(values) }
        }

        /** An INT32 tensor (allocated by onnxruntime) holding a copy of [values]. @throws IllegalArgumentException when the count differs from the shape's. */
        @JvmStatic
        fun fromInts(values: IntArray, shape: LongArray): Tensor {
            checkCount(values.size, shape)
            return allocate(ElementType.INT32, shape).also { it.buffer.asIntBuffer().put(values) }
        }
    }
}
