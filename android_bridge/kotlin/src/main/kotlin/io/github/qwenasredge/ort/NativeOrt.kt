package io.github.qwenasredge.ort

import java.nio.ByteBuffer

/**
 * The JNI functions of `libqwen_asr_ort_jni` (android_bridge/native/ort_jni.c). Handles are native
 * pointers; 0 is "closed" and makes the native side throw [IllegalStateException]. Errors from
 * onnxruntime are thrown as [OrtException]. Callers (the wrappers in this package) call [Ort.load]
 * first and check that their handles are open.
 */
internal object NativeOrt {
    @JvmStatic external fun version(): String

    @JvmStatic external fun availableProviders(): Array<String>

    /** From [path] (UTF-8 bytes) if not null, else from buffer[offset, offset + length), direct. */
    @JvmStatic external fun openSession(
        path: ByteArray?,
        buffer: ByteBuffer?,
        offset: Int,
        length: Int,
        intraOpThreads: Int,
        optimizationLevel: Int,
        configKeys: Array<String>,
        configValues: Array<String>,
        providerNames: Array<String>,
        providerKeys: Array<Array<String>>,
        providerValues: Array<Array<String>>,
    ): Long

    @JvmStatic external fun sessionInputNames(session: Long): Array<String>

    @JvmStatic external fun sessionOutputNames(session: Long): Array<String>

    @JvmStatic external fun closeSession(session: Long)

    /** New tensor handles for [outputNames], in order. */
    @JvmStatic external fun run(session: Long, inputNames: Array<String>, inputs: LongArray, outputNames: Array<String>): LongArray

    /** buffer[offset, offset + length) (direct) as a tensor, without a copy. */
    @JvmStatic external fun wrapTensor(buffer: ByteBuffer, offset: Int, length: Int, type: Int, shape: LongArray): Long

    @JvmStatic external fun allocateTensor(type: Int, shape: LongArray): Long

    @JvmStatic external fun tensorType(tensor: Long): Int

    @JvmStatic external fun tensorShape(tensor: Long): LongArray

    /** The tensor's memory (big-endian flag, as every new ByteBuffer), or null when it has no bytes. */
    @JvmStatic external fun tensorBuffer(tensor: Long): ByteBuffer?

    @JvmStatic external fun releaseTensor(tensor: Long)

    @JvmStatic external fun createBinding(session: Long): Long

    /** [kind]: [BIND_INPUT], [BIND_OUTPUT] or [BIND_OUTPUT_CPU] (tensor unused). */
    @JvmStatic external fun bind(binding: Long, kind: Int, name: String, tensor: Long)

    @JvmStatic external fun runBinding(binding: Long)

    /** `[Array<String> names, LongArray tensors]`: the bound outputs as new tensor handles. */
    @JvmStatic external fun boundOutputs(binding: Long): Array<Any>

    @JvmStatic external fun clearBinding(binding: Long, outputs: Boolean)

    @JvmStatic external fun releaseBinding(binding: Long)

    const val BIND_INPUT = 0
    const val BIND_OUTPUT = 1
    const val BIND_OUTPUT_CPU = 2
}
