package io.github.qwenasredge

import io.github.qwenasredge.ort.ElementType
import io.github.qwenasredge.ort.ExecutionProvider
import io.github.qwenasredge.ort.Ort
import io.github.qwenasredge.ort.OrtException
import io.github.qwenasredge.ort.OrtSession
import io.github.qwenasredge.ort.SessionOptions
import io.github.qwenasredge.ort.Tensor
import io.github.qwenasredge.text.BpeTokenizer
import io.github.qwenasredge.text.TranscriptParser
import java.io.File
import java.io.RandomAccessFile
import java.util.Locale
import java.nio.channels.FileChannel
import java.util.concurrent.locks.ReentrantReadWriteLock
import kotlin.concurrent.withLock
import kotlin.math.abs
import kotlin.math.ceil

/**
 * How [QwenAsr.open] creates its onnxruntime sessions.
 *
 * @property threads intra-op threads per session; 0 is onnxruntime's default (one per core).
 * @property providers execution providers to try before the CPU, in order ([ExecutionProvider.XNNPACK],
 *   [ExecutionProvider.NNAPI] on Android); one the library lacks raises an `OrtException` at open.
 * @property verify check every bundle file's sha256 at open (a 0.6B int4 bundle: about a second
 *   on a phone); off, a damaged file fails later, at session creation or with wrong text.
 * @property mapGraphs open `.ort` graphs from a memory-mapped file whose bytes onnxruntime uses in
 *   place (`session.use_ort_model_bytes_directly` and `..._for_initializers`) instead of reading
 *   the file and copying every weight out of it: less memory at load (bench/android_jvm.py).
 */
data class QwenAsrOptions(
    val threads: Int = 0,
    val providers: List<ExecutionProvider> = emptyList(),
    val verify: Boolean = true,
    val mapGraphs: Boolean = true,
)

/**
 * One chunk of a recording and its transcript (the Python runtime's `Segment`).
 *
 * @property start the chunk's start, seconds from the recording's start; [end] its end.
 * @property text the chunk's transcript, with no model markup.
 * @property language the language the model named, or the forced one; "" when none (no speech).
 * @property tokens the generated ids, the stop id included.
 * @property finishReason "stop", "length" (the token cap: the text may be cut short) or
 *   "repetition" (the repetition guard stopped a loop).
 * @property promptIds the prompt the decoder was given (audio placeholders expanded).
 */
class Segment(
    val start: Double,
    val end: Double,
    val text: String,
    val language: String,
    val tokens: IntArray,
    val finishReason: String,
    val promptIds: IntArray,
)

/**
 * A recording's transcript: one [Segment] per chunk (one for a clip of up to
 * `decoding.max_chunk_seconds`, 30 s), assembled as the Python runtime's `Transcript.of`.
 *
 * @property text the segments' texts joined as their language writes (a space between words,
 *   none in Chinese or Japanese: `text.join_texts`).
 * @property language the main language: the one whose segments cover the most audio (the first
 *   among ties); "" when no segment named one.
 * @property languages the segments' languages in order, empty ones and repeats in a row dropped
 *   (what the official package joins with "," as its `language`).
 * @property segments the chunks, in time order, covering the recording.
 * @property tokens every segment's generated ids in order, each segment's stop id included (for
 *   one chunk: the Python runtime's `Segment.tokens`).
 * @property finishReason "stop" when every chunk stopped; else the first other reason ("length":
 *   a chunk's text may be cut short; "repetition": the guard stopped a loop).
 * @property promptIds the first chunk's prompt (every chunk's differs only in its audio length).
 * @property durationSeconds the audio's length.
 * @property encodeSeconds mel and encoder; [prefillSeconds] and [stepSeconds] the decoder calls
 *   (all chunks').
 */
class Transcription(
    val text: String,
    val language: String,
    val tokens: IntArray,
    val finishReason: String,
    val promptIds: IntArray,
    val durationSeconds: Double,
    val encodeSeconds: Double,
    val prefillSeconds: Double,
    val stepSeconds: DoubleArray,
    val segments: List<Segment>,
    val languages: List<String>,
)

/**
 * Qwen3-ASR on a mobile bundle (`qwen-asr-edge android-pack`), the same pipeline as the Python
 * runtime's `Transcriber.transcribe` for one clip of up to `decoding.max_chunk_seconds` (30 s):
 * peak normalisation, log-mel (`preprocessor` graph), the audio encoder, the chat prompt with the
 * context and an optional forced language, greedy decoding with the official stop ids, the
 * length-based token cap and the repetition guard, then the official output parsing. On the same
 * bundle and onnxruntime it gives the Python runtime's tokens and text exactly (tested against the
 * bundle's golden vectors).
 *
 * Threads: [transcribe] may be called from several threads at once (onnxruntime runs its sessions
 * concurrently; each call has its own cache), though the sessions' own threads already use every
 * core. [close] frees the native memory: it waits for calls in progress to end (streams' steps
 * included); any call after it throws [IllegalStateException].
 */
class QwenAsr private constructor(val bundle: MobileBundle, options: QwenAsrOptions) : AutoCloseable {
    private val lock = ReentrantReadWriteLock() // calls hold its read lock, close its write lock
    @Volatile private var closed = false
    private val sessionOptions = SessionOptions(intraOpThreads = options.threads, providers = options.providers)
    private val preprocessor: OrtSession
    private val encoder: OrtSession
    private val decoder: OrtSession
    private val decoding: GreedyDecoder

    init {
        bundle.checkRuntime()
        val opened = ArrayList<OrtSession>()
        try {
            for (name in listOf("preprocessor", "encoder", "decoder")) opened += openGraph(name, options.mapGraphs)
        } catch (e: Exception) {
            opened.forEach { it.close() }
            throw e
        }
        preprocessor = opened[0]
        encoder = opened[1]
        decoder = opened[2]
        decoding = GreedyDecoder(decoder, bundle)
    }

    private fun openGraph(name: String, map: Boolean): OrtSession {
        val graph = bundle.graph(name)
        val session = try {
            openFile(graph.file, map)
        } catch (e: OrtException) {
            if (e.message?.contains("is not in this onnxruntime library") == true) throw e // a provider, not the graph
            throw BundleException(bundle.dir, "onnxruntime ${Ort.version()} cannot load ${graph.file.name} (${e.message})", cause = e)
        }
        // A manifest edited by hand (or another model's graph) fails here, not mid-transcription.
        if (session.inputNames.toSet() != graph.inputs.toSet() || session.outputNames.toSet() != graph.outputs.toSet()) {
            session.close()
            throw BundleException(bundle.dir, "${graph.file.name} has inputs ${session.inputNames} and outputs ${session.outputNames}, " +
                "not the manifest's ${graph.inputs} and ${graph.outputs}")
        }
        return session
    }

    private fun openFile(file: File, map: Boolean): OrtSession {
        if (!map || !file.name.endsWith(".ort")) return OrtSession.open(file.path, sessionOptions)
        // The mapping stays valid after the file closes; the session keeps the buffer referenced.
        // (RandomAccessFile, not java.nio.file: Android has that from API 26 only.)
        val bytes = RandomAccessFile(file, "r").use { it.channel.map(FileChannel.MapMode.READ_ONLY, 0, it.length()) }
        val inPlace = mapOf("session.use_ort_model_bytes_directly" to "1", "session.use_ort_model_bytes_for_initializers" to "1")
        return OrtSession.open(bytes, sessionOptions.copy(config = sessionOptions.config + inPlace))
    }

    /** The byte-level BPE tokenizer: loaded on first use (decoding, or encoding a context). */
    val tokenizer: BpeTokenizer by lazy {
        BpeTokenizer.load(bundle.vocabFile, bundle.mergesFile, bundle.addedTokens, bundle.normalizer, bundle.preTokenizerPattern)
    }

    /** The language names the model can be forced to (ISO codes are accepted too). */
    val languages: List<String> get() = bundle.languages

    /** The sample rate [transcribe] takes, in Hz (16000). */
    val sampleRate: Int get() = bundle.sampleRate

    /**
     * Transcribe a recording of any length. One longer than `decoding.max_chunk_seconds` (30 s) is
     * cut at its quiet points (the Python runtime's `chunking`, after the official
     * `split_audio_into_chunks`) and each chunk decoded on its own with the same language and
     * context, as the Python runtime's `Transcriber.transcribe` does for an array; memory holds
     * the recording and one chunk's caches.
     *
     * @param pcm mono samples, float in [-1, 1] (louder recordings are divided by their peak, as
     *   the official package does), at least 201 samples.
     * @param sampleRate the samples' rate in Hz; must be [sampleRate] (16000): record at 16 kHz
     *   (Android's `AudioRecord` supports it) or resample first.
     * @param language force the language: a name ("English") or ISO code ("en"); null or "" detects it.
     * @param context hot words or background text for the model's system turn.
     * @throws AudioException empty, non-finite or too short audio, or another sample rate.
     * @throws IllegalArgumentException an unsupported language, or a context holding control tokens.
     */
    fun transcribe(pcm: FloatArray, sampleRate: Int, language: String? = null, context: String = ""): Transcription = guard {
        val wav = checkedAudio(pcm, sampleRate)
        val forced = language?.takeIf { it.isNotEmpty() }?.let { normalizeLanguage(it) } // "" detects, as in Python
        val rate = bundle.sampleRate.toDouble()
        val ranges = if (wav.size <= (bundle.maxChunkSeconds * rate).toInt()) listOf(wav.indices)
        else Chunking.split(wav, bundle.sampleRate, bundle.maxChunkSeconds)
        val segments = ArrayList<Segment>()
        var encodeSeconds = 0.0
        var prefillSeconds = 0.0
        val steps = ArrayList<DoubleArray>()
        for (range in ranges) {
            val chunk = if (ranges.size == 1) wav else wav.copyOfRange(range.first, range.last + 1)
            val start = range.first / rate // as Python's Chunk: offset, then offset + duration
            val end = start + chunk.size / rate
            val began = System.nanoTime()
            val (embeds, audioTokens) = encode(chunk)
            embeds.use {
                encodeSeconds += (System.nanoTime() - began) / 1e9
                val prompt = promptIds(audioTokens, context, forced)
                val generation = decoding.generate(prompt, embeds, audioTokens, tokenCap(chunk.size / rate))
                val raw = tokenizer.decode(generation.tokens, skipSpecialTokens = true)
                val parsed = TranscriptParser.parseTranscript(raw, forced, generation.finishReason == "length", bundle.markup)
                segments += Segment(start, end, parsed.text, parsed.language, generation.tokens, generation.finishReason, prompt)
                prefillSeconds += generation.prefillSeconds
                steps += generation.stepSeconds
            }
        }
        Transcription(
            TranscriptParser.joinTexts(segments.map { it.text }),
            mainLanguage(segments),
            segments.flatMap { it.tokens.asIterable() }.toIntArray(),
            segments.firstOrNull { it.finishReason != "stop" }?.finishReason ?: "stop",
            segments[0].promptIds,
            wav.size / rate,
            encodeSeconds,
            prefillSeconds,
            steps.flatMap { it.asIterable() }.toDoubleArray(),
            segments,
            languageRuns(segments.map { it.language }),
        )
    }

    /**
     * Log-mel features of a clip at [sampleRate] through the bundle's `preprocessor` graph:
     * (n_mels, samples / hop) float32, row-major, as the Python runtime's `LogMel`.
     */
    fun logMel(wav: FloatArray): FloatArray = guard {
        Tensor.fromFloats(wav, longArrayOf(1, wav.size.toLong())).use { input ->
            val out = preprocessor.run(mapOf("pcm" to input), listOf("log_mel"))
            out.getValue("log_mel").use { it.floats() }
        }
    }

    /** (audio_embeds (1, A, H) tensor, valid rows) of a checked clip. */
    internal fun encode(wav: FloatArray): Pair<Tensor, Int> {
        val mel = logMel(wav)
        return runEncoder(mel, mel.size / bundle.nMels)
    }

    /** The encoder on (n_mels, frames) row-major log-mel: ((A, H) row-major rows, A valid rows). */
    internal fun encodeFeatures(features: FloatArray, frames: Int): Pair<FloatArray, Int> {
        val (embeds, rows) = runEncoder(features, frames)
        embeds.use {
            val out = FloatArray(rows * bundle.hiddenSize) // the valid rows only, copied once
            it.buffer.asFloatBuffer().get(out)
            return out to rows
        }
    }

    private fun runEncoder(mel: FloatArray, frames: Int): Pair<Tensor, Int> {
        // Zero-padded to whole encoder chunks, as the runtime's batch_features(pad_to=chunk_frames).
        val padded = (frames + bundle.chunkFrames - 1) / bundle.chunkFrames * bundle.chunkFrames
        val features = FloatArray(bundle.nMels * padded)
        for (m in 0 until bundle.nMels) System.arraycopy(mel, m * frames, features, m * padded, frames)
        Tensor.fromFloats(features, longArrayOf(1, bundle.nMels.toLong(), padded.toLong())).use { input ->
            Tensor.fromLongs(longArrayOf(frames.toLong()), longArrayOf(1)).use { lens ->
                val out = encoder.run(mapOf("input_features" to input, "feature_lens" to lens), listOf("audio_embeds", "audio_embed_lens"))
                val tokens = out.getValue("audio_embed_lens").use { it.longs()[0].toInt() }
                return out.getValue("audio_embeds") to tokens
            }
        }
    }

    /**
     * The prompt of one clip, as the Python runtime's `Transcriber.prompt_ids`: the chat template
     * around `context`, the audio placeholder repeated `audioTokens` times, and `language X<asr_text>`
     * when a language is forced. With no context it is the manifest's ids (no tokenizer needed).
     *
     * @param language a supported name (already normalised) or null.
     * @param prefix text the answer already holds (a stream's forced prefix), encoded with the
     *   template as the official streaming prompt `prompt_raw + prefix` is.
     * @throws IllegalArgumentException the context holds a control token.
     */
    fun promptIds(audioTokens: Int, context: String = "", language: String? = null, prefix: String = ""): IntArray {
        val ids = if (context.isEmpty() && prefix.isEmpty()) {
            bundle.promptIds + (language?.let { bundle.languageIds[it] ?: throw IllegalArgumentException("no prompt ids for $it") } ?: IntArray(0))
        } else {
            val bad = bundle.addedTokens.map { it.content }.filter { it in context }.sorted()
            require(bad.isEmpty()) { "context must not contain control tokens such as '${bad.first()}'" }
            val suffix = language?.let { bundle.languageSuffix.replace("{language}", it) } ?: ""
            tokenizer.encode(bundle.beforeContext + context + bundle.afterContext + suffix + prefix)
        }
        val at = ids.indices.filter { ids[it] == bundle.audioPad }
        if (at.size != 1) throw BundleException(bundle.dir, "the prompt template has ${at.size} audio placeholders, not 1")
        return ids.copyOfRange(0, at[0]) + IntArray(audioTokens) { bundle.audioPad } + ids.copyOfRange(at[0] + 1, ids.size)
    }

    /**
     * A language name in any case ("cHINese ") or its ISO code ("zh") -> "Chinese", as the
     * runtime's `normalize_language`.
     *
     * @throws IllegalArgumentException not one of [languages].
     */
    fun normalizeLanguage(language: String): String {
        val key = language.trim()
        val code = key.lowercase(Locale.ROOT)
        val base = code.split('-', '_', limit = 2)[0] // BCP 47: "de-DE", "pt_BR", "zh-Hans"
        val name = bundle.isoCodes[code] ?: bundle.isoCodes[base] ?: (key.take(1).uppercase() + key.drop(1).lowercase())
        require(name in bundle.languages) {
            val codes = LinkedHashMap<String, String>()
            for ((iso, known) in bundle.isoCodes) codes.putIfAbsent(known, iso)
            val listed = bundle.languages.joinToString(", ") { n -> codes[n]?.let { "$n ($it)" } ?: n }
            val detect = if (code == "auto" || code == "detect") " (leave the language out to detect it)" else ""
            "unsupported language '$language'$detect; supported: $listed"
        }
        return name
    }

    private fun checkedAudio(pcm: FloatArray, rate: Int): FloatArray {
        if (rate != bundle.sampleRate) {
            throw AudioException("audio at $rate Hz: the model takes ${bundle.sampleRate} Hz; record at ${bundle.sampleRate} Hz or resample first")
        }
        if (pcm.isEmpty()) throw AudioException("empty audio: no samples")
        if (pcm.any { !it.isFinite() }) throw AudioException("audio contains NaN or infinite samples")
        val least = minSamples
        if (pcm.size < least) throw AudioException("too short: ${pcm.size} samples at $rate Hz yield no frame (at least $least)")
        // Divided by the peak when that exceeds full scale, clipped to [-1, 1] (audio.peak_normalized).
        var peak = 0f
        for (x in pcm) peak = maxOf(peak, abs(x))
        if (peak <= 1f) return pcm
        return FloatArray(pcm.size) { (pcm[it] / peak).coerceIn(-1f, 1f) }
    }

    /**
     * A live stream: feed audio as it comes, get committed and tentative text after every step
     * (the Python runtime's `Transcriber.stream`, see [StreamingSession]).
     *
     * @param language force the language (name or ISO code), or null to detect it.
     * @param context hot words or background text for the model's system turn.
     * @throws IllegalArgumentException an unsupported language or a context with control tokens.
     */
    fun stream(language: String? = null, context: String = "", options: StreamingOptions = StreamingOptions()): StreamingSession = guard {
        val forced = language?.takeIf { it.isNotEmpty() }?.let { normalizeLanguage(it) }
        promptIds(0, context, forced) // refuses a bad context now, not at the first step
        StreamingSession(this, forced, context, options)
    }

    /** [block] with the sessions held open: it runs before a [close] that comes meanwhile. */
    internal fun <T> guard(block: () -> T): T = lock.readLock().withLock {
        check(!closed) { "this QwenAsr is closed" }
        block()
    }

    /** One greedy decode on a cache of its own (the streaming session's reference mode). */
    internal fun generate(prompt: IntArray, embeds: Tensor, audioTokens: Int, cap: Int, history: IntArray, guard: Boolean): Generation =
        decoding.generate(prompt, embeds, audioTokens, cap, history, guard)

    /** A decoder cache kept across a stream's steps (its bounded mode). */
    internal fun keptPrefix(): KeptPrefix = KeptPrefix(decoding, bundle)

    /** The token cap of a clip of `seconds`, its stop id included (TranscriptionOptions.token_cap). */
    internal fun tokenCap(seconds: Double): Int = bundle.prefixTokens + ceil(bundle.tokensPerSecond * seconds).toInt() + 1

    /** Fewest samples that yield a mel frame (LogMel.min_samples). */
    internal val minSamples: Int get() = maxOf(bundle.hopLength, bundle.nFft / 2 + 1)

    /** Waits for calls in progress, then frees the sessions; idempotent. */
    override fun close() {
        lock.writeLock().withLock {
            if (closed) return
            closed = true
            preprocessor.close()
            encoder.close()
            decoder.close()
        }
    }

    companion object {
        /** The language whose segments cover the most audio, the first among ties ("" if none), as `Transcript.of`. */
        internal fun mainLanguage(segments: List<Segment>): String {
            val seconds = LinkedHashMap<String, Double>()
            for (s in segments) if (s.language.isNotEmpty()) seconds[s.language] = (seconds[s.language] ?: 0.0) + (s.end - s.start)
            var best = ""
            for ((language, covered) in seconds) if (best.isEmpty() || covered > seconds.getValue(best)) best = language
            return best
        }

        /** Languages in order, empty ones and repeats in a row dropped (results.language_runs). */
        internal fun languageRuns(languages: List<String>): List<String> {
            val out = ArrayList<String>()
            for (language in languages.map { TranscriptParser.pyStrip(it) }) {
                if (language.isNotEmpty() && (out.isEmpty() || out.last() != language)) out += language
            }
            return out
        }

        /**
         * Open a mobile bundle folder.
         *
         * @throws BundleException see [MobileBundle]; also a bundle for a newer onnxruntime, a
         *   graph onnxruntime cannot load, or one whose inputs and outputs are not the manifest's.
         * @throws OrtException a provider the onnxruntime library lacks.
         */
        fun open(bundleDir: File, options: QwenAsrOptions = QwenAsrOptions()): QwenAsr =
            QwenAsr(MobileBundle(bundleDir, options.verify), options)
    }
}
