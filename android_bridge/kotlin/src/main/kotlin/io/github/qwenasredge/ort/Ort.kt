package io.github.qwenasredge.ort

/**
 * The native library and onnxruntime-wide queries. The library `libqwen_asr_ort_jni` links
 * against `libonnxruntime`; on Android both come with the app (the AAR's `libonnxruntime.so` and
 * this project's CMake build), so [load] with no argument finds them.
 */
object Ort {
    /** The JVM system property naming the JNI library's path when [load] gets none. */
    const val LIBRARY_PROPERTY: String = "qwenasr.jni.library"

    @Volatile private var loaded = false

    /**
     * Loads the JNI library once per process: `System.load(libraryPath)` when given (relative to
     * the working folder), else the path
     * in the system property [LIBRARY_PROPERTY] when set, else `System.loadLibrary("qwen_asr_ort_jni")`.
     * Later calls do nothing (whatever their argument). Every class of this package calls it on first use.
     * @throws UnsatisfiedLinkError when the library (or libonnxruntime) cannot be loaded.
     */
    @JvmStatic
    @JvmOverloads
    @Synchronized
    fun load(libraryPath: String? = null) {
        if (loaded) return
        val path = libraryPath ?: System.getProperty(LIBRARY_PROPERTY)?.takeIf { it.isNotEmpty() }
        // System.load wants an absolute path; a relative one is taken from the working folder.
        if (path != null) System.load(java.io.File(path).absolutePath) else System.loadLibrary("qwen_asr_ort_jni")
        loaded = true
    }

    /** onnxruntime's version, e.g. `1.32.0` (the library's, not the headers' it was built with). */
    @JvmStatic
    fun version(): String {
        load()
        return NativeOrt.version()
    }

    /**
     * The execution providers this onnxruntime library has, by onnxruntime's ids, e.g.
     * `[XnnpackExecutionProvider, NnapiExecutionProvider, CPUExecutionProvider]` on Android.
     * @throws OrtException when onnxruntime cannot list them.
     */
    @JvmStatic
    fun availableProviders(): List<String> {
        load()
        return NativeOrt.availableProviders().toList()
    }
}
