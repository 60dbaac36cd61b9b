package io.github.qwenasredge

import io.github.qwenasredge.ort.Ort
import io.github.qwenasredge.text.AddedToken
import io.github.qwenasredge.text.Json
import java.io.File
import java.security.MessageDigest

/** The mobile bundle format this library reads (android_bridge/README.md). */
const val MOBILE_FORMAT = "qwen-asr-edge-mobile"
const val MOBILE_FORMAT_VERSION = 1L

/** One graph of the bundle: its file and the names of its inputs and outputs, in order. */
class GraphInfo(val file: File, val inputs: List<String>, val outputs: List<String>)

/** Names and shape of the decoder's key/value cache (`kv_cache` in the manifest). */
class KvCacheInfo(
    val numLayers: Int,
    val numKvHeads: Int,
    val headDim: Int,
    val maxPositions: Int,
    private val pastKey: String,
    private val pastValue: String,
    private val presentKey: String,
    private val presentValue: String,
) {
    /** (past key, past value, present key, present value) input/output names of `layer`. */
    fun names(layer: Int): List<String> =
        listOf(pastKey, pastValue, presentKey, presentValue).map { it.replace("{layer}", layer.toString()) }
}

/** The repetition guard's parameters (`decoding.repetition_guard`), as runtime/repetition.py. */
class GuardInfo(val maxUnit: Int, val minRepeats: Int, val minTokens: Int)

/**
 * A mobile bundle's manifest, read and checked: everything [QwenAsr] needs to know about the
 * model (graphs, mel, special ids, prompt ids, decoding constants, tokenizer files).
 *
 * @throws BundleException the folder or its manifest is missing or unreadable, of another format
 *   or version, names files that are missing, or (with `verify`) a file fails its sha256.
 */
class MobileBundle(val dir: File, verify: Boolean = true) {
    private val manifest: Map<String, Any?>

    init {
        val file = File(dir, "manifest.json")
        if (!dir.isDirectory) throw BundleException(dir, "is not a folder", "give the folder android-pack wrote")
        if (!file.isFile) throw BundleException(dir, "has no manifest.json", "is it a mobile bundle (qwen-asr-edge android-pack)?")
        val parsed = try {
            Json.parse(file.readText(Charsets.UTF_8))
        } catch (e: Exception) {
            throw BundleException(dir, "manifest.json is not valid JSON (${e.message})", cause = e)
        }
        @Suppress("UNCHECKED_CAST")
        manifest = parsed as? Map<String, Any?> ?: throw BundleException(dir, "manifest.json is not a JSON object")
        val format = manifest["format"]
        val version = manifest["format_version"]
        if (format != MOBILE_FORMAT) {
            throw BundleException(dir, "manifest.json is not a mobile bundle's (format ${format ?: "missing"})",
                "make one with `qwen-asr-edge android-pack BUNDLE OUT`")
        }
        if (version != MOBILE_FORMAT_VERSION) {
            throw BundleException(dir, "has mobile format version $version; this library reads $MOBILE_FORMAT_VERSION",
                "repack it with the matching qwen-asr-edge")
        }
        for ((name, entry) in obj("files")) {
            val path = File(dir, name)
            // Golden vectors are for an app's tests: an app may leave them out of what it ships.
            if (!path.isFile && name.startsWith("golden/")) continue
            if (!path.isFile) throw BundleException(dir, "is missing $name", "copy the whole folder")
            if (verify) {
                val want = (entry as? Map<*, *>)?.get("sha256") as? String ?: fail("files.$name.sha256")
                if (sha256(path) != want) {
                    throw BundleException(dir, "$name is altered or incomplete (sha256 mismatch)", "copy it again")
                }
            }
        }
    }

    private fun fail(key: String): Nothing = throw BundleException(dir, "manifest.json lacks or garbles \"$key\"")

    @Suppress("UNCHECKED_CAST")
    private fun obj(key: String, from: Map<String, Any?> = manifest): Map<String, Any?> =
        from[key] as? Map<String, Any?> ?: fail(key)

    private fun str(key: String, from: Map<String, Any?>): String = from[key] as? String ?: fail(key)

    private fun int(key: String, from: Map<String, Any?>): Int = (from[key] as? Number)?.toInt() ?: fail(key)

    private fun double(key: String, from: Map<String, Any?>): Double = (from[key] as? Number)?.toDouble() ?: fail(key)

    private fun ints(value: Any?, key: String): IntArray =
        (value as? List<*>)?.map { (it as? Number)?.toInt() ?: fail(key) }?.toIntArray() ?: fail(key)

    /** Rows of the decoder's logits: the model's vocabulary (`source.model.vocab_size`). */
    val vocabSize: Int = int("vocab_size", obj("model", obj("source")))

    /** Width of an audio embedding, the decoder's hidden size (`source.model.hidden_size`). */
    val hiddenSize: Int = int("hidden_size", obj("model", obj("source")))

    /** The onnxruntime version the graphs were converted with: the least the app may run. */
    val minOnnxruntime: String = str("min_onnxruntime", manifest)

    val graphs: Map<String, GraphInfo> = obj("graphs").mapValues { (name, value) ->
        @Suppress("UNCHECKED_CAST")
        val graph = value as? Map<String, Any?> ?: fail("graphs.$name")
        fun names(key: String) = (graph[key] as? List<*>)?.map { ((it as? Map<*, *>)?.get("name") as? String) ?: fail("graphs.$name.$key") }
            ?: fail("graphs.$name.$key")
        GraphInfo(File(dir, str("file", graph)), names("inputs"), names("outputs"))
    }

    fun graph(name: String): GraphInfo = graphs[name] ?: fail("graphs.$name")

    private val mel = obj("mel")
    val sampleRate: Int = int("sample_rate", mel)
    val nFft: Int = int("n_fft", mel)
    val hopLength: Int = int("hop_length", mel)
    val nMels: Int = int("n_mels", mel)

    private val encoder = obj("encoder")

    /** Mel frames per encoder chunk: features are zero-padded to a multiple of it. */
    val chunkFrames: Int = int("chunk_frames", encoder)

    /** Audio embeddings per encoder chunk, and per attention window ("windowed" encoders). */
    val tokensPerChunk: Int = int("tokens_per_chunk", encoder)
    val windowTokens: Int = int("window_tokens", encoder)

    /** "windowed" (attention within 8 s windows: a stream keeps completed ones) or "full". */
    val encoderAttention: String = str("attention", encoder)

    val kvCache: KvCacheInfo = obj("kv_cache").let {
        KvCacheInfo(
            int("num_layers", it), int("num_kv_heads", it), int("head_dim", it), int("max_positions", it),
            str("past_key", it), str("past_value", it), str("present_key", it), str("present_value", it),
        ).also { _ -> if (it["dtype"] != "float32") fail("kv_cache.dtype (float32 only)") }
    }

    /** The decoder's attention kind; "portable" graphs need a zeroed cache (runtime/kv_cache.py). */
    val attention: String = (manifest["decoder"] as? Map<*, *>)?.get("attention") as? String ?: "gqa"

    private val tokens = obj("tokens")
    val audioPad: Int = int("audio_pad", tokens)
    val asrText: Int = int("asr_text", tokens)
    val eos: IntArray = ints(tokens["eos"], "tokens.eos")

    val languages: List<String> = (manifest["languages"] as? List<*>)?.map { it as? String ?: fail("languages") } ?: fail("languages")
    val isoCodes: Map<String, String> = obj("iso_codes").mapValues { it.value as? String ?: fail("iso_codes") }

    private val prompt = obj("prompt")
    val beforeContext: String = str("before_context", prompt)
    val afterContext: String = str("after_context", prompt)
    val languageSuffix: String = str("language_suffix", prompt)
    val promptIds: IntArray = ints(prompt["ids"], "prompt.ids")
    val languageIds: Map<String, IntArray> = obj("language_ids", prompt).mapValues { ints(it.value, "prompt.language_ids") }

    private val decoding = obj("decoding")
    val tokensPerSecond: Double = double("tokens_per_second", decoding)
    val prefixTokens: Int = int("prefix_tokens", decoding)
    val maxChunkSeconds: Double = double("max_chunk_seconds", decoding)
    val guard: GuardInfo = obj("repetition_guard", decoding).let {
        GuardInfo(int("max_unit", it), int("min_repeats", it), int("min_tokens", it))
    }

    private val tokenizer = obj("tokenizer")
    val vocabFile: File = File(dir, str("vocab", tokenizer))
    val mergesFile: File = File(dir, str("merges", tokenizer))
    val normalizer: String = str("normalizer", tokenizer)
    val preTokenizerPattern: String = str("pre_tokenizer_pattern", tokenizer)
    val addedTokens: List<AddedToken> = (tokenizer["added_tokens"] as? List<*>)?.map {
        val t = it as? Map<*, *> ?: fail("tokenizer.added_tokens")
        AddedToken((t["id"] as? Number)?.toInt() ?: fail("tokenizer.added_tokens"), t["content"] as? String
            ?: fail("tokenizer.added_tokens"), t["special"] as? Boolean ?: fail("tokenizer.added_tokens"))
    } ?: fail("tokenizer.added_tokens")

    /** Control-token strings that parsing removes from text (all added tokens but `<asr_text>`). */
    val markup: List<String> = (manifest["markup"] as? List<*>)?.map { it as? String ?: fail("markup") } ?: fail("markup")

    init {
        // Values a hand-edited manifest could break, caught here rather than as a division by
        // zero or a negative shape mid-transcription.
        for ((key, value) in listOf(
            "mel.sample_rate" to sampleRate, "mel.n_fft" to nFft, "mel.hop_length" to hopLength, "mel.n_mels" to nMels,
            "encoder.chunk_frames" to chunkFrames, "encoder.tokens_per_chunk" to tokensPerChunk,
            "encoder.window_tokens" to windowTokens, "kv_cache.num_layers" to kvCache.numLayers,
            "kv_cache.num_kv_heads" to kvCache.numKvHeads, "kv_cache.head_dim" to kvCache.headDim,
            "kv_cache.max_positions" to kvCache.maxPositions, "source.model.vocab_size" to vocabSize,
            "source.model.hidden_size" to hiddenSize,
        )) if (value <= 0) fail(key)
        if (eos.isEmpty()) fail("tokens.eos")
        if (!(tokensPerSecond > 0 && tokensPerSecond <= 1000)) fail("decoding.tokens_per_second")
        if (!(maxChunkSeconds > 0 && maxChunkSeconds <= 3600)) fail("decoding.max_chunk_seconds")
        if (prefixTokens < 0) fail("decoding.prefix_tokens")
    }

    /**
     * Throws when the onnxruntime in use is older than [minOnnxruntime]: ORT format has no
     * forward compatibility, and an old runtime fails with an obscure flatbuffer error.
     */
    fun checkRuntime(version: String = Ort.version()) {
        if (compareVersions(version, minOnnxruntime) < 0) {
            throw BundleException(dir, "needs onnxruntime $minOnnxruntime or newer; this app has $version",
                "update onnxruntime (com.microsoft.onnxruntime:onnxruntime-android) or repack with an older converter")
        }
    }

    companion object {
        /** "1.32.0" vs "1.9.1": numeric parts compared in order (a missing part is 0). */
        fun compareVersions(a: String, b: String): Int {
            val x = a.split('.', '-', '+').map { it.toIntOrNull() ?: 0 }
            val y = b.split('.', '-', '+').map { it.toIntOrNull() ?: 0 }
            for (i in 0 until maxOf(x.size, y.size)) {
                val c = (x.getOrElse(i) { 0 }).compareTo(y.getOrElse(i) { 0 })
                if (c != 0) return c
            }
            return 0
        }

        private fun sha256(file: File): String {
            val digest = MessageDigest.getInstance("SHA-256")
            file.inputStream().use { input ->
                val block = ByteArray(1 shl 20)
                while (true) {
                    val n = input.read(block)
                    if (n < 0) break
                    digest.update(block, 0, n)
                }
            }
            return digest.digest().joinToString("") { "%02x".format(it) }
        }
    }
}
