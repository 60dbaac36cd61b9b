package io.github.qwenasredge.ort

/**
 * An error reported by onnxruntime (or by the native bridge around it): a model that cannot be
 * opened, an unknown input name, an execution provider that this onnxruntime library lacks, a
 * failed run. The message is one line: what was being done, then onnxruntime's message, e.g.
 * `cannot open /data/decoder.ort: No such file or directory`.
 */
class OrtException(message: String) : RuntimeException(message)

/**
 * A tensor element type: [onnxType] is the ONNX `TensorProto.DataType` code (onnxruntime's
 * `ONNXTensorElementDataType`), [byteSize] the size of one element in bytes. Multi-byte elements
 * are stored in the platform's native byte order (little-endian on every Android ABI). BOOL is one
 * byte, 0 or 1; FLOAT16 and BFLOAT16 are raw 16-bit patterns.
 */
enum class ElementType(val onnxType: Int, val byteSize: Int) {
    /** 32-bit IEEE float. */
    FLOAT(1, 4),

    /** Unsigned byte. */
    UINT8(2, 1),

    /** Signed byte. */
    INT8(3, 1),

    /** 32-bit signed integer. */
    INT32(6, 4),

    /** 64-bit signed integer (token ids, indices). */
    INT64(7, 8),

    /** One byte, 0 (false) or 1 (true). */
    BOOL(9, 1),

    /** IEEE half precision, as raw 16-bit patterns. */
    FLOAT16(10, 2),

    /** 16-bit unsigned integer. */
    UINT16(4, 2),

    /** 16-bit signed integer. */
    INT16(5, 2),

    /** 64-bit IEEE float. */
    DOUBLE(11, 8),

    /** 32-bit unsigned integer. */
    UINT32(12, 4),

    /** 64-bit unsigned integer. */
    UINT64(13, 8),

    /** bfloat16, as raw 16-bit patterns. */
    BFLOAT16(16, 2),
    ;

    /** The element type with ONNX code [onnxType]. */
    companion object {
        /**
         * The element type of ONNX code [onnxType].
         * @throws IllegalArgumentException for codes without a fixed-size element (string) or unknown codes.
         */
        @JvmStatic
        fun fromOnnx(onnxType: Int): ElementType =
            entries.firstOrNull { it.onnxType == onnxType }
                ?: throw IllegalArgumentException("ONNX element type $onnxType is not supported (only fixed-size numeric types)")
    }
}

/**
 * An execution provider to append to a session, by onnxruntime's short [name] (`"XNNPACK"`,
 * `"NNAPI"`, `"QNN"`, ... or `"CPU"`, which adds nothing: the CPU provider is always last), with
 * provider-specific [options] (XNNPACK: `intra_op_num_threads`; NNAPI: flags `use_fp16`,
 * `use_nchw`, `cpu_disabled`, `cpu_only` = `"1"`/`"0"`). Opening a session with a provider that
 * the onnxruntime library lacks throws [OrtException] "XNNPACK is not in this onnxruntime
 * library (...)"; the desktop onnxruntime has neither XNNPACK nor NNAPI, the Android AAR has both.
 */
data class ExecutionProvider(val name: String, val options: Map<String, String> = emptyMap()) {
    /** The providers of the onnxruntime-android AAR. */
    companion object {
        /** XNNPACK with its defaults; set `session.intra_op.allow_spinning=0` with it (onnxruntime's advice). */
        @JvmField val XNNPACK: ExecutionProvider = ExecutionProvider("XNNPACK")

        /** NNAPI with no flags (deprecated since Android 15). */
        @JvmField val NNAPI: ExecutionProvider = ExecutionProvider("NNAPI")

        /** The CPU provider: adds nothing (it is always there, last). */
        @JvmField val CPU: ExecutionProvider = ExecutionProvider("CPU")
    }
}

/**
 * Options of [OrtSession.open].
 * @property intraOpThreads onnxruntime's intra-op thread count; 0 lets onnxruntime choose.
 * @property optimizationLevel graph optimization: 0 none, 1 basic, 2 extended, 99 all (onnxruntime's default).
 * @property providers execution providers, tried by onnxruntime in this order before the CPU provider.
 * @property config session config entries (`AddSessionConfigEntry`), e.g.
 *   `session.use_ort_model_bytes_directly=1` for a model opened from a direct ByteBuffer,
 *   `session.intra_op.allow_spinning=0`.
 * @throws IllegalArgumentException for a negative thread count or an unknown level.
 */
data class SessionOptions(
    val intraOpThreads: Int = 0,
    val optimizationLevel: Int = 99,
    val providers: List<ExecutionProvider> = emptyList(),
    val config: Map<String, String> = emptyMap(),
) {
    init {
        require(intraOpThreads >= 0) { "intraOpThreads must be >= 0, not $intraOpThreads" }
        require(optimizationLevel in LEVELS) { "optimizationLevel must be 0, 1, 2 or 99, not $optimizationLevel" }
    }

    private companion object {
        val LEVELS = setOf(0, 1, 2, 99)
    }
}
