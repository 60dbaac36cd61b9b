"""Transcriber: audio in, text, language, segments and word times out, from an exported bundle.

The pipeline, each step a public method with a contract (the seams quant, bench and the
streaming and server layers build on):

    load(audio)        -> (n,) float32 at 16 kHz            audio.py
    features(wavs)     -> (B, n_mels, T) log-mel + lengths   mel.py
    encode(wavs)       -> AudioEncoding (B, A, H) + lengths  features + the encoder graph
    prompt_ids(A, ...) -> (L,) int64                         the official chat template
    decode(prompts, encoding, caps) -> Generation            greedy, IO-bound KV cache
    forced_logits(prompt, encoding, tokens) -> (T + 1, V)    teacher forcing (scoring)

``transcribe``, ``transcribe_batch`` and ``iter_segments`` cut long recordings at quiet points
(chunking.py), decode the chunks in batches, parse ``language X<asr_text>text`` and, with word
timestamps, run the bundle's aligner on each chunk.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from .audio import AudioInput, BlockReader, describe, duration, load_audio, peak_normalized, read_blocks
from .bundle import Bundle, load_bundle
from .chunking import Chunk, cut_at_quiet_points
from .decoding import Generation, GreedyDecoder, LanguageProbe
from .errors import AudioError, BundleError, InputError
from .mel import LogMel, batch_features
from .options import TranscriptionOptions
from .parsing import parse_transcript
from .prompt import PromptBuilder, normalize_language
from .providers import SessionSettings, create_session, resolve_providers, session_device
from .repetition import RepetitionGuard
from .results import Segment, Timings, Transcript, Word
from .streaming import StreamingOptions, StreamingSession
from .tokenizer import Tokenizer
from .vad import check_available, speech_chunks

log = logging.getLogger("qwen_asr_edge")


@dataclass(frozen=True)
class AudioEncoding:
    """The encoder's output for a batch of clips.

    Attributes:
        values: (B, A, H) float32 audio embeddings in the decoder's width: an onnxruntime
            OrtValue on the session's device (bound straight into the decoder), or a numpy array.
        lengths: (B,) int64 valid rows of ``values`` per clip (one per audio placeholder).
        seconds: Wall time of log-mel and encoder.
    """

    values: object
    lengths: np.ndarray
    seconds: float = 0.0

    def numpy(self) -> np.ndarray:
        """(B, A, H) float32 on the host."""
        return self.values if isinstance(self.values, np.ndarray) else self.values.numpy()

    def row(self, i: int) -> AudioEncoding:
        """Clip ``i`` alone, (1, lengths[i], H), on the host."""
        n = int(self.lengths[i])
        return AudioEncoding(self.numpy()[i : i + 1, :n], self.lengths[i : i + 1].copy(), 0.0)


@dataclass(frozen=True)
class _Item:
    """One chunk of one recording, waiting to be decoded."""

    index: int  # which input it came from
    chunk: Chunk
    context: str
    language: str | None
    source: str = ""  # the input, as messages name it


class Transcriber:
    """Load a bundle once, transcribe many recordings.

    Args:
        bundle: A bundle folder (``qwen-asr-edge export``; ``demo_bundle()`` is the built-in
            demo model) or a loaded Bundle.
        providers: "auto" (CUDA, then DirectML, then CPU), a short name ("cpu", "cuda", "dml")
            or a list of onnxruntime provider names.
        threads: Shortcut for ``SessionSettings(threads=...)``.
        verify: Check every bundle file's sha256.
        settings: onnxruntime session settings (see SessionSettings).

    Raises:
        BundleError: missing, altered or unknown bundle, or one that holds only an aligner.
        ProviderError: the requested execution provider is not available.
        MissingDependencyError: no onnxruntime package is installed.
    """

    def __init__(
        self,
        bundle: str | os.PathLike | Bundle,
        providers: str | Sequence[str] = "auto",
        threads: int | None = None,
        verify: bool = True,
        settings: SessionSettings | None = None,
    ):
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle, verify=verify)
        manifest = self.bundle.manifest
        if manifest.model.kind != "asr":
            raise BundleError(
                self.bundle.path,
                "holds a forced aligner only",
                "use `qwen-asr-edge align` (the Aligner class)",
            )
        names = resolve_providers(providers)
        settings = _given(settings, SessionSettings, "settings")
        if threads is not None:
            settings = dataclasses.replace(settings, threads=threads)
        self.settings = settings
        self._providers = names
        self._aligner = None
        self._encoder = create_session(str(self.bundle.graph_path("encoder")), names, settings)
        self._decoder = create_session(str(self.bundle.graph_path("decoder")), names, settings)
        self.device = session_device(self._decoder)
        self.tokenizer = Tokenizer(self.bundle.file(manifest.tokenizer))
        self._prompts = PromptBuilder(manifest, self.tokenizer)
        self._mel = LogMel(manifest.mel)
        self._greedy = GreedyDecoder(self._decoder, self.device, manifest)
        self._language_probe = self._probe()
        self._prefix_tokens = self._prefix_length()
        asr_text = self.tokenizer.decode([manifest.tokens.asr_text], skip_special_tokens=False)
        self._markup = self.tokenizer.added_strings - {asr_text}  # control tokens decoding keeps
        if (
            self.device.ort_device == "cuda"
            and manifest.decoder.attention == "gqa"
            and manifest.kv_cache.dtype == "float32"
        ):
            # Measured on an H200: fp32 and int4 GQA bundles run at ~15 ms/token there, fp16 at 3.3.
            log.warning(
                "%s: onnxruntime's CUDA GroupQueryAttention has no fp32 kernel, so its attention runs "
                "on the CPU; on CUDA use an fp16 bundle (qwen-asr-edge quantize --recipe fp16)",
                self.bundle.path,
            )
        log.info(
            "transcribing with %s (%s decoder) on %s, %d threads",
            self.bundle.path.name,
            manifest.decoder.attention,
            self.device.provider,
            settings.resolved_threads(),
        )

    def _probe(self) -> LanguageProbe:
        """Where the model names the language: ``language`` then `` English`` (spec §5)."""
        head = self.bundle.manifest.prompt.language_suffix.split("{language}")[0]  # "language "
        names = (*self.languages, "None")
        first = [self.tokenizer.encode(head[len(head.rstrip()) :] + name)[0] for name in names]
        return LanguageProbe(tuple(self.tokenizer.encode(head.rstrip())), names, np.array(first))

    def _prefix_length(self) -> int:
        """Tokens of the longest ``language X<asr_text>`` the model can write (X a language
        name or "None"): the part of a chunk's token cap that is not text."""
        suffix = self.bundle.manifest.prompt.language_suffix
        names = (*self.languages, "None")
        return max(len(self.tokenizer.encode(suffix.format(language=name))) for name in names)

    def token_cap(self, seconds: float, options: TranscriptionOptions) -> int:
        """The most tokens a chunk of ``seconds`` may generate with these options, its stop id
        included (TranscriptionOptions.token_cap, with this bundle's language prefix)."""
        return options.token_cap(seconds, self._prefix_tokens)

    def check_options(self, options: TranscriptionOptions, context: str = "") -> None:
        """Refuse, before any work, options under which a chunk could not be decoded: the longest
        chunk's prompt (its audio placeholders, the chat template, ``context``) plus its token
        cap must fit in the model's positions (``max_position_embeddings``).

        Raises:
            InputError: naming the options to lower, and the model's limit.
        """
        seconds = self.chunk_seconds(options)
        manifest = self.bundle.manifest
        limit = manifest.kv_cache.max_positions
        per_second = manifest.mel.sample_rate / manifest.mel.hop_length  # mel frames
        audio_per_second = per_second / manifest.encoder.chunk_frames * manifest.encoder.tokens_per_chunk
        rough = seconds * (audio_per_second + options.tokens_per_second)  # floats: no overflow
        cap = options.max_new_tokens or 0
        if rough + cap <= 2 * limit:  # small enough to count exactly
            frames = int(np.ceil(seconds * per_second))
            audio = -(-frames // manifest.encoder.chunk_frames) * manifest.encoder.tokens_per_chunk
            needed = len(self._prompts.ids(audio, context, None)) + self.token_cap(seconds, options)
            if needed <= limit:
                return
        context_tokens = len(self._prompts.ids(0, context, None)) - len(self._prompts.ids(0, "", None))
        with_context = f" and the context ({context_tokens} tokens)" if context_tokens > 100 else ""
        raise InputError(
            f"a chunk of {seconds:g} s (--max-chunk-seconds) with its token cap (--max-new-tokens)"
            f"{with_context} needs more than the model's {limit} positions; lower them"
        )

    @property
    def provider(self) -> str:
        """The onnxruntime execution provider in use, e.g. "CPUExecutionProvider"."""
        return self.device.provider

    @property
    def precision(self) -> str:
        """The bundle's recipe: "fp32", "int8", "int4", "int4-gptq" or "fp16"."""
        return self.bundle.manifest.recipe

    @property
    def languages(self) -> list[str]:
        """The language names the model can be forced to (ISO codes are accepted too)."""
        return list(self.bundle.manifest.languages)

    @property
    def sample_rate(self) -> int:
        """The model's sample rate in Hz (16000); bare numpy arrays are taken to be at it."""
        return self.bundle.manifest.mel.sample_rate

    @property
    def aligner(self):
        """The bundle's forced aligner (sessions created on first use), for word times.

        Raises:
            BundleError: the bundle holds no aligner.
        """
        if self._aligner is None:
            from .aligner import Aligner

            self._aligner = Aligner(self.bundle, providers=self._providers, settings=self.settings)
        return self._aligner

    def session_options(self) -> dict[str, object]:
        """The onnxruntime SessionOptions of the "encoder" and "decoder" sessions, as created."""
        return {
            "encoder": self._encoder.get_session_options(),
            "decoder": self._decoder.get_session_options(),
        }

    def end_profiling(self) -> dict[str, str]:
        """Ends onnxruntime's profiling of the "encoder" and "decoder" sessions, and of the
        aligner's ("aligner_encoder", "aligner") if word times loaded it, and writes their traces
        (JSON, Chrome trace format), for a Transcriber made with ``SessionSettings(profile=PREFIX)``.

        Returns:
            {session name: path of its trace}.

        Raises:
            ValueError: the sessions were not made with profiling on.
        """
        if not self.settings.profile:
            raise ValueError("profiling is off: create the Transcriber with SessionSettings(profile=PREFIX)")
        traces = {"encoder": self._encoder.end_profiling(), "decoder": self._decoder.end_profiling()}
        if self._aligner is not None:
            traces.update(self._aligner.end_profiling())
        return traces

    # -- the pipeline's steps -------------------------------------------------------------------

    def load(self, audio: AudioInput) -> np.ndarray:
        """Decode and check one input.

        Args:
            audio: A path, a numpy array at ``sample_rate`` (16 kHz), or ``(array, rate)``.

        Returns:
            (n,) float32 mono samples in [-1, 1] at ``sample_rate``, at least one mel frame long.

        Raises:
            AudioError: unreadable, empty, NaN, or too short for one frame.
        """
        wav = load_audio(audio, self.sample_rate)
        if wav.shape[0] < self._mel.min_samples():
            raise AudioError(
                describe(audio), f"too short: {wav.shape[0]} samples at {self.sample_rate} Hz yield no frame"
            )
        return wav

    def features(self, wavs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Log-mel features of a batch, as the official feature extractor computes them.

        Args:
            wavs: (n_i,) float32 mono clips at ``sample_rate``, each at least one frame long.

        Returns:
            ((B, n_mels, T) float32 zero-padded to whole encoder chunks, (B,) int64 valid frames).
        """
        return batch_features(self._mel, list(wavs), pad_to=self.bundle.manifest.encoder.chunk_frames)

    def encode(self, wavs: Sequence[np.ndarray]) -> AudioEncoding:
        """Log-mel features and the encoder for a batch of clips (``features``, then
        ``encode_features``); ``seconds`` covers both.

        Args:
            wavs: (n_i,) float32 mono clips at ``sample_rate``, each at least one frame long
                (see ``load``); chunks, not whole recordings.
        """
        start = time.perf_counter()
        encoding = self.encode_features(*self.features(wavs))
        return dataclasses.replace(encoding, seconds=time.perf_counter() - start)

    def encode_features(self, features: np.ndarray, lengths: np.ndarray) -> AudioEncoding:
        """The encoder graph on log-mel features.

        Args:
            features: (B, n_mels, T) float32, as ``features`` returns.
            lengths: (B,) int64 valid frames per clip.

        Returns:
            An AudioEncoding whose values stay on the session's device.
        """
        start = time.perf_counter()
        io = self._encoder.io_binding()
        io.bind_cpu_input("input_features", np.ascontiguousarray(features, dtype=np.float32))
        io.bind_cpu_input("feature_lens", np.ascontiguousarray(lengths, dtype=np.int64))
        io.bind_output("audio_embeds", self.device.ort_device, self.device.device_id)
        io.bind_output("audio_embed_lens", "cpu")
        self._encoder.run_with_iobinding(io)
        embeds, out_lens = io.get_outputs()
        return AudioEncoding(embeds, out_lens.numpy(), time.perf_counter() - start)

    def prompt_ids(
        self, audio_tokens: int, context: str = "", language: str | None = None, prefix: str = ""
    ) -> np.ndarray:
        """The prompt of one clip, as the official ``_build_text_prompt`` and processor build it.

        Args:
            audio_tokens: The clip's encoder length (``AudioEncoding.lengths[i]``).
            context: Text for the system turn (hot words, background).
            language: A supported name or ISO code to force, or None to let the model say.
            prefix: Output text the answer starts with (streaming: ``prompt_raw + prefix``).

        Returns:
            (L,) int64 token ids, the audio placeholder repeated ``audio_tokens`` times.

        Raises:
            InputError: an unsupported language, or control tokens in the context.
        """
        if language:
            language = normalize_language(language, self.languages)
        return self._prompts.ids(audio_tokens, context, language, prefix)

    def decode(
        self,
        prompts: Sequence[np.ndarray],
        encoding: AudioEncoding | None,
        max_new_tokens: Sequence[int],
        *,
        stop: bool = True,
        log_probs: bool = False,
        repetition_guard: RepetitionGuard | None = None,
        history: Sequence[Sequence[int]] | None = None,
    ) -> Generation:
        """Greedy decoding of a batch (see decoding.GreedyDecoder.generate).

        Args:
            prompts: B prompts from ``prompt_ids`` (text-only prompts when ``encoding`` is None).
            encoding: The batch's AudioEncoding, rows in the order of ``prompts``, or None.
            max_new_tokens: Per prompt, the cap on generated tokens (stop id included).
            stop: False decodes every row to its cap (benchmarks).
            log_probs: Also return each token's log-probability.
            repetition_guard: Stop a row whose last tokens are a loop (``TranscriptionOptions``
                turns it on for transcription; here it is off unless given).
            history: Per prompt, ids already said before it (a streaming prefix's text), which
                the guard looks at with the new ones.

        Returns:
            A Generation: tokens, finish reasons, log-probabilities, language probabilities and
            timings.
        """
        return self._greedy.generate(
            list(prompts),
            None if encoding is None else encoding.values,
            None if encoding is None else encoding.lengths,
            list(max_new_tokens),
            stop=stop,
            log_probs=log_probs,
            language=self._language_probe,
            repetition_guard=repetition_guard,
            history=None if history is None else [list(h) for h in history],
        )

    def forced_logits(
        self, prompt: np.ndarray, encoding: AudioEncoding | None, tokens: Sequence[int]
    ) -> np.ndarray:
        """Teacher forcing: the decoder's logits after ``prompt`` and after each of ``tokens``.

        Args:
            prompt: (L,) int64 from ``prompt_ids``.
            encoding: One clip's AudioEncoding (``AudioEncoding.row``), or None for text only.
            tokens: The continuation to feed, in order.

        Returns:
            (len(tokens) + 1, V) float32 logits.
        """
        return self._greedy.forced_logits(
            prompt,
            None if encoding is None else encoding.values,
            None if encoding is None else encoding.lengths,
            list(tokens),
        )

    def detect_language(self, audio: AudioInput) -> tuple[str, float, dict[str, float]]:
        """The language spoken in the first chunk (at most 30 s), as faster-whisper's
        ``detect_language``.

        Returns:
            (language, probability, {name: probability for every name}); language is "" and
            the dict empty when the model does not name one ("None" is the no-speech answer).

        Raises:
            AudioError: as ``load``.
        """
        wav = self.load(audio)[: int(30 * self.sample_rate)]
        encoding = self.encode([wav])
        prompt = self.prompt_ids(int(encoding.lengths[0]))
        probs = self.decode([prompt], encoding, [len(self._language_probe.prefix) + 1]).languages[0]
        if not probs:
            return "", 0.0, {}
        best = max(probs, key=probs.__getitem__)
        return ("" if best == "None" else best), probs[best], probs

    def stream(
        self, language: str | None = None, context: str = "", options: StreamingOptions | None = None
    ) -> StreamingSession:
        """Start a live stream: feed it audio as it comes, read committed and tentative text.

            session = asr.stream(language="en")
            for block in microphone_blocks():            # any size, any rate
                for update in session.feed(block, 48000):
                    print(update.committed, "|", update.tentative)
            print(session.finish().committed)

        Args:
            language: Force the language (name or ISO code); None lets the model say.
            context: Hot words or background text for the model's system turn.
            options: See StreamingOptions (the official 2 s steps by default).

        Returns:
            A StreamingSession (streaming.py: the algorithm, committed text, utterances).

        Raises:
            InputError: an unsupported language, a bad context, or one too long for an utterance's
                prompt (``max_utterance_seconds`` of audio and its token cap) to fit the model.
        """
        if language:
            language = normalize_language(language, self.languages)
        options = _given(options, StreamingOptions)
        self._prompts.ids(0, context, language)  # refuses a bad context now, not at the first step
        self.check_stream_context(context, options)
        return StreamingSession(self, language, context, options)

    def check_stream_context(self, context: str, options: StreamingOptions | None = None) -> None:
        """Refuse, before any audio, a context too long for a stream: the prompt of its longest
        utterance (``max_utterance_seconds`` of audio) and its token cap must fit the model, or the
        first step would fail inside onnxruntime.

        Raises:
            InputError: naming the utterance length and the model's limit.
        """
        options = _given(options, StreamingOptions)
        longest = options.max_utterance_seconds or StreamingOptions.max_utterance_seconds
        try:
            self.check_options(
                TranscriptionOptions(max_chunk_seconds=longest, max_new_tokens=options.max_new_tokens),
                context,
            )
        except InputError:
            limit = self.bundle.manifest.kv_cache.max_positions
            raise InputError(
                f"the context is too long for a stream: with utterances of up to {longest:g} s and "
                f"their token cap it needs more than the model's {limit} positions; shorten it"
            ) from None

    # -- whole recordings -----------------------------------------------------------------------

    def chunk_seconds(self, options: TranscriptionOptions) -> float:
        """The longest chunk these options allow: with word timestamps, no longer than the
        aligner's limit (as the official package cuts)."""
        if options.word_timestamps:
            return min(options.max_chunk_seconds, self.aligner.spec.max_seconds)
        return options.max_chunk_seconds

    def prepare(self, audio: AudioInput, options: TranscriptionOptions | None = None) -> AudioInput:
        """Check one input before decoding: a file longer than one chunk is checked by its header
        and returned as its path, to be read a block at a time; anything else is decoded (``load``).

        Raises:
            AudioError: as ``load`` (for long files: what the header shows).
        """
        wav, _ = self._prepare(audio, _given(options, TranscriptionOptions))
        return audio if wav is None else wav

    @staticmethod
    def _named(name: str, work, *args):
        """``work(*args)``, an AudioError in it named ``name`` (the caller's name for the input)."""
        try:
            return work(*args)
        except AudioError as e:  # renamed in place: its class (AudioFileNotFoundError...) is kept
            e.source = name
            e.args = (f"{name}: {e.problem}",)
            raise

    def _prepare(self, audio: AudioInput, options: TranscriptionOptions) -> tuple[np.ndarray | None, float]:
        """(None, seconds) for a file to read in blocks, else (samples, seconds)."""
        if options.vad_filter:
            check_available()  # before any decoding: a missing extra is one error, not one per file
        if isinstance(audio, (str, os.PathLike)):
            seconds = duration(audio)
            if seconds > self.chunk_seconds(options):
                return None, seconds
        wav = self.load(audio)
        return wav, wav.shape[0] / self.sample_rate

    def _chunks(
        self,
        audio: AudioInput,
        wav: np.ndarray | None,
        options: TranscriptionOptions,
        blocks: BlockReader | None = None,
    ) -> Iterator[Chunk]:
        """One recording's chunks: from its samples, or read from its file a block at a time
        (``blocks``, whose count of samples read is then the decoded length); with ``vad_filter``,
        its speech only."""
        if wav is not None:  # decoded whole: already peak-normalised (load)
            yield from self._cut([wav], options)
            return
        blocks = blocks or read_blocks(audio, self.sample_rate)
        for chunk in self._cut(blocks, options):
            yield dataclasses.replace(chunk, wav=peak_normalized(chunk.wav))  # a file's peak: per chunk

    def _cut(self, blocks: Iterable[np.ndarray], options: TranscriptionOptions) -> Iterator[Chunk]:
        seconds = self.chunk_seconds(options)
        if options.vad_filter:
            return speech_chunks(blocks, self.sample_rate, seconds, options.vad_parameters)
        return cut_at_quiet_points(blocks, self.sample_rate, seconds)

    def transcribe(
        self,
        audio: AudioInput,
        *,
        language: str | None = None,
        context: str = "",
        options: TranscriptionOptions | None = None,
    ) -> Transcript:
        """Transcribe one recording.

        Args:
            audio: A path (any format soundfile reads), a numpy array at 16 kHz, or
                ``(array, sample_rate)``; any length; mono (N,) or multi-channel (N, C) or
                (C, N) with C <= 8, channels averaged; float in [-1, 1] or integer PCM.
            language: Force the language (a name such as "English", or an ISO code such as
                "en"); None detects it per chunk.
            context: Hot words or background text for the model's system turn.
            options: See TranscriptionOptions.

        Returns:
            A Transcript.

        Raises:
            AudioError: the input cannot be transcribed (the message names it).
            InputError: an unsupported language, a bad context, or options beyond the model's
                positions (``check_options``).
            MissingDependencyError: a file that needs the [media] extra, or ``vad_filter``
                without the [vad] extra.
        """
        return self.transcribe_batch([audio], language=language, context=context, options=options)[0]

    def iter_segments(
        self,
        audio: AudioInput,
        *,
        language: str | None = None,
        context: str = "",
        options: TranscriptionOptions | None = None,
    ) -> Iterator[Segment]:
        """Transcribe one recording lazily: segments in time order, each batch as it is decoded.

        Arguments and errors as ``transcribe``; the input is checked when the iteration starts.
        """
        options = _given(options, TranscriptionOptions)
        self.check_options(options, context)
        language = normalize_language(language, self.languages) if language and language.strip() else None
        wav, _ = self._prepare(audio, options)
        source = describe(audio)
        items = (_Item(0, c, context or "", language, source) for c in self._chunks(audio, wav, options))
        done: list[Segment] = []
        for _, segments, _ in self._run(_in_batches(items, options.batch_size), options):
            done += segments
            yield from segments
        report_chunks(source, done, options)

    def transcribe_batch(
        self,
        audios: Sequence[AudioInput],
        *,
        language: str | Sequence[str | None] | None = None,
        context: str | Sequence[str] = "",
        options: TranscriptionOptions | None = None,
        sources: Sequence[str] | None = None,
    ) -> list[Transcript]:
        """Transcribe several recordings, decoding their chunks together in batches.

        Every input is checked before any decoding starts, so a bad file fails fast. Recordings
        that fit in memory are decoded shortest chunks together (least padding); files longer than
        one chunk are read from disk a block at a time, their chunks decoded in order, so memory
        does not grow with their length.

        Args:
            audios: Inputs as for ``transcribe``.
            language: One language for all, or one per input (None: detect).
            context: One context for all, or one per input.
            options: See TranscriptionOptions.
            sources: A name per input for messages and ``Transcript.source`` (the file an array
                was read from); default: the path, or a description of the array.

        Returns:
            One Transcript per input, in order.

        Raises:
            AudioError, InputError: as ``transcribe``; InputError also when a per-input list
            has the wrong length, or when the options cannot fit the model (``check_options``).
            Every input is checked (read, or a long file's header) before any is decoded, so a
            bad one raises before any work is done, naming the input.
            TypeError: ``audios`` is one input (a path, or an array) instead of a sequence.
        """
        if isinstance(audios, (str, bytes, os.PathLike, np.ndarray)):
            raise TypeError(
                f"transcribe_batch takes a list of inputs; got one {type(audios).__name__} "
                "(for one recording, call transcribe)"
            )
        options = _given(options, TranscriptionOptions)
        n = len(audios)
        languages = [
            normalize_language(x, self.languages) if x and str(x).strip() else None
            for x in _per_item(language, n, "language")
        ]
        contexts = _per_item(context, n, "context")
        self.check_options(options, max((c or "" for c in contexts), key=len, default=""))
        names = [describe(a) for a in audios] if sources is None else _per_item(list(sources), n, "sources")
        prepared = [self._named(names[i], self._prepare, audio, options) for i, audio in enumerate(audios)]
        in_memory = [
            _Item(i, c, contexts[i] or "", languages[i], names[i])
            for i, (wav, _) in enumerate(prepared)
            if wav is not None
            for c in self._chunks(audios[i], wav, options)
        ]
        in_memory.sort(key=lambda it: it.chunk.wav.shape[0])  # similar lengths together: less padding
        # Long files: the header's length plans the work, the decoded length is reported (a cut file's
        # header announces more than it holds).
        readers = {
            i: read_blocks(audios[i], self.sample_rate) for i, (wav, _) in enumerate(prepared) if wav is None
        }
        from_files = (
            _Item(i, c, contexts[i] or "", languages[i], names[i])
            for i, reader in readers.items()
            for c in self._chunks(audios[i], None, options, reader)
        )
        batches = itertools.chain(
            _in_batches(iter(in_memory), options.batch_size), _in_batches(from_files, options.batch_size)
        )
        found: dict[int, list[Segment]] = {i: [] for i in range(n)}
        timings = [Timings() for _ in range(n)]
        progress = progress_bar(sum(seconds for _, seconds in prepared), options.progress)
        for items, segments, batch in self._run(batches, options):
            for item, segment in zip(items, segments, strict=True):
                found[item.index].append(segment)
                progress.update(item.chunk.duration)
            for index in {item.index for item in items}:  # a batch's time counts once per input
                timings[index].encode.extend(batch.encode)
                timings[index].prefill.extend(batch.prefill)
                timings[index].steps.extend(batch.steps)
        progress.close()
        ordered = [sorted(found[i], key=lambda s: s.start) for i in range(n)]
        for i in range(n):
            report_chunks(names[i], ordered[i], options)
        return [
            Transcript.of(
                ordered[i],
                readers[i].seconds if i in readers else prepared[i][1],
                source=names[i],
                provider=self.provider,
                precision=self.precision,
                options=options,
                timings=timings[i],
            )
            for i in range(n)
        ]

    def _run(
        self, batches: Iterable[list[_Item]], options: TranscriptionOptions
    ) -> Iterator[tuple[list[_Item], list[Segment], Timings]]:
        """The one decode loop: each batch encoded, decoded and parsed, yielded with its items."""
        for items in batches:
            encoding = self.encode([it.chunk.wav for it in items])
            prompts = [
                self.prompt_ids(int(n), it.context, it.language)
                for it, n in zip(items, encoding.lengths, strict=True)
            ]
            caps = [self.token_cap(it.chunk.duration, options) for it in items]
            generation = self.decode(
                prompts,
                encoding,
                caps,
                stop=not options.ignore_stop,
                log_probs=options.wants_log_probs,
                repetition_guard=options.repetition_guard,
            )
            timings = Timings(
                [float(encoding.seconds)], [generation.prefill_seconds], generation.step_seconds
            )
            yield (
                items,
                [self._segment(it, generation, row, options) for row, it in enumerate(items)],
                timings,
            )

    def _segment(
        self, item: _Item, generation: Generation, row: int, options: TranscriptionOptions
    ) -> Segment:
        tokens = generation.tokens[row]
        finish_reason = generation.finish_reasons[row]
        parsed = parse_transcript(
            self.tokenizer.decode(tokens),
            item.language,
            truncated=finish_reason == "length",  # a loop is cut after a whole unit: not mid-word
            markup=self._markup,
        )
        lang, text = parsed.language, parsed.text
        log_probs = generation.log_probs[row] if generation.log_probs is not None else None
        chunk = item.chunk
        words: list[Word] = []
        if options.word_timestamps:  # on the chunk as decoded
            words = self.aligner.words(chunk.wav, text, lang, chunk.offset)
            if log_probs is not None:
                words = _with_probabilities(words, text, self._token_spans(tokens, text), log_probs)
        if item.language:
            language_probability = 1.0
        else:
            probs = generation.languages[row] if generation.languages else None
            language_probability = probs.get(lang) if probs and lang else None
        return Segment(
            chunk.offset,
            chunk.offset + chunk.duration,
            text,
            lang,
            tokens,
            words,
            avg_logprob=float(np.mean(log_probs)) if log_probs else None,
            language_probability=language_probability,
            finish_reason=finish_reason,
            reached_text=parsed.reached_text,
        )

    def _token_spans(self, tokens: list[int], text: str) -> list[tuple[int, int]] | None:
        """Per generated token, the [start, end) characters of ``text`` it spells (prefix and
        stop tokens empty); None when ``text`` is not the tokens' plain decoding (repetitions
        collapsed), so no word gets a wrong probability."""
        asr_text = self.bundle.manifest.tokens.asr_text
        begin = tokens.index(asr_text) + 1 if asr_text in tokens else 0
        spans: list[tuple[int, int]] = [(0, 0)] * begin
        decoded, end = "", 0
        for k in range(begin, len(tokens)):
            decoded = self.tokenizer.decode(tokens[begin : k + 1])
            start, end = end, max(end, len(decoded.lstrip()))  # parse_output strips the text
            spans.append((start, end))
        return spans if decoded.strip() == text else None


_T = TypeVar("_T")


def _given(value: object, kind: type[_T], name: str = "options") -> _T:
    """``value``, or ``kind()`` for None; anything else (a dict of options) is refused.

    Raises:
        TypeError: naming the argument and the type it takes.
    """
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise TypeError(
            f"{name} must be a {kind.__name__} (e.g. {kind.__name__}(...) with its fields as keywords) or "
            f"None; got {type(value).__name__}"
        )
    return value


def report_chunks(source: str, segments: Sequence[Segment], options: TranscriptionOptions) -> None:
    """The warnings for one recording's segments (in time order): chunks at their token cap,
    stopped in a loop, or with no transcript written; one line for each kind there is."""
    chunks = len(segments)
    report_capped(source, [s for s in segments if s.finish_reason == "length"], chunks, options)
    report_looped(source, [s for s in segments if s.finish_reason == "repetition"], chunks)
    report_unwritten(source, [s for s in segments if not s.reached_text], chunks)


def report_unwritten(source: str, unwritten: Sequence[Segment], chunks: int) -> None:
    """One warning per recording in which the model wrote no transcript for some chunks
    (``reached_text`` False: its output never reached ``<asr_text>``, so their text is ""; a real
    model answers silence with ``language None<asr_text>``, which is no such chunk), on the
    package logger (the CLI prints it): where, and that shorter chunks may help.

    Args:
        source: The recording's name.
        unwritten: Its segments with no transcript written, in time order.
        chunks: How many chunks it had.
    """
    if not unwritten:
        return
    what = f"{_which(unwritten, chunks, 'for', 'for')} the model wrote no transcript"
    hint = ""
    if max(s.end - s.start for s in unwritten) > 10:
        hint = "; shorter chunks (--max-chunk-seconds, TranscriptionOptions.max_chunk_seconds) may help"
    log.warning("%s: %s (no <asr_text>: silence or noise, or speech it did not follow)%s", source, what, hint)


def report_capped(source: str, capped: Sequence[Segment], chunks: int, options: TranscriptionOptions) -> None:
    """One warning per recording whose chunks reached their token cap (``finish_reason`` "length"),
    on the package logger (the CLI prints it): where, and what to do. Nothing with ``ignore_stop``.

    Args:
        source: The recording's name.
        capped: Its capped segments, in time order.
        chunks: How many chunks it had.
        options: The options it was decoded with.
    """
    if not capped or options.ignore_stop:
        return
    first = capped[0]
    where = f"{first.start:.2f}-{first.end:.2f} s"
    if len(capped) == 1:
        what = f"{where} reached its cap of {len(first.tokens)} tokens, so its text may be cut short"
    else:
        what = (
            f"{len(capped)} of {chunks} chunks reached their token cap (the first at {where}, "
            f"{len(first.tokens)} tokens), so their text may be cut short"
        )
    log.warning(
        "%s: %s or a repetition; raise the cap with --max-new-tokens (TranscriptionOptions.max_new_tokens)",
        source,
        what,
    )


def _which(segments: Sequence[Segment], chunks: int, one: str, several: str) -> str:
    """Where a warning's chunks are: "at 3.00-4.00 s" for one, "in 2 of 5 chunks (the first at
    3.00-4.00 s)" for several (``one`` and ``several`` the prepositions)."""
    where = f"{segments[0].start:.2f}-{segments[0].end:.2f} s"
    if len(segments) == 1:
        return f"{one} {where}"
    return f"{several} {len(segments)} of {chunks} chunks (the first at {where})"


def report_looped(source: str, looped: Sequence[Segment], chunks: int) -> None:
    """One warning per recording whose chunks the repetition guard stopped (``finish_reason``
    "repetition"), on the package logger (the CLI prints it): where, what the text keeps, and that
    speech after the loop in such a chunk may be missing.

    Args:
        source: The recording's name.
        looped: Its looped segments, in time order.
        chunks: How many chunks it had.
    """
    if not looped:
        return
    what = f"{_which(looped, chunks, 'at', 'in')} the model repeated itself"
    log.warning(
        "%s: %s; decoding stopped at the loop and the text keeps one copy of what repeated, so speech "
        "after it may be missing (--no-repetition-guard, TranscriptionOptions.repetition_guard=None, "
        "decodes loops to the token cap instead)",
        source,
        what,
    )


def _with_probabilities(
    words: list[Word], text: str, spans: list[tuple[int, int]] | None, log_probs: list[float]
) -> list[Word]:
    """Each word's probability: the mean probability of the tokens overlapping its characters.
    A unit is its text's characters with punctuation dropped, in order (``split_words``), so it is
    found as a subsequence of ``text`` after the previous unit."""
    if spans is None:
        return words
    out, cursor = [], 0
    for w in words:
        at, end = cursor, cursor
        for char in w.text:
            found = text.find(char, end)
            if found < 0:
                return out + words[len(out) :]  # not this text's units: leave the rest alone
            at = found if end == cursor else at
            end = found + 1
        cursor = end
        probs = [np.exp(lp) for (a, b), lp in zip(spans, log_probs, strict=False) if a < end and b > at]
        out.append(dataclasses.replace(w, probability=round(float(np.mean(probs)), 4)) if probs else w)
    return out


def _in_batches(items: Iterator[_Item], size: int) -> Iterator[list[_Item]]:
    while group := list(itertools.islice(items, size)):
        yield group


def _per_item(value, n: int, what: str) -> list:
    """One value for every recording, or one each; each a string or None."""
    values = [value] * n if value is None or isinstance(value, str) else value
    if not isinstance(values, Sequence) or not all(v is None or isinstance(v, str) for v in values):
        raise InputError(f"{what} must be a string, None, or a list of them; got {value!r}")
    if len(values) != n:
        raise InputError(f"{len(values)} {what} values for {n} recordings")
    return list(values)


def progress_bar(total_seconds: float, wanted: bool):
    """A tqdm bar over audio seconds, on long work only and only when stderr is a terminal."""
    from tqdm import tqdm

    show = wanted and total_seconds > 60 and sys.stderr.isatty()
    return tqdm(total=round(total_seconds, 1), unit="s", unit_scale=True, disable=not show, leave=False)
