package io.github.qwenasredge

import java.io.File

/** Base of what [QwenAsr] throws for input it cannot take; the message is one line. */
open class QwenAsrException(message: String, cause: Throwable? = null) : RuntimeException(message, cause)

/**
 * A mobile bundle that cannot be used: missing, altered, of an unknown format, or for a newer
 * onnxruntime. The message names the folder and says what to do, as the Python runtime's
 * `BundleError` does.
 */
class BundleException(val bundle: File, val problem: String, hint: String? = null, cause: Throwable? = null) :
    QwenAsrException("$bundle: $problem" + (hint?.let { "; $it" } ?: ""), cause)

/** Audio that cannot be transcribed: empty, NaN, at another sample rate, too short or too long. */
class AudioException(val problem: String) : QwenAsrException(problem)
