"""Transcriber: audio in, text and language out, from an exported bundle."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .audio import AudioInput, describe, load_audio
from .bundle import Bundle, load_bundle
from .chunking import split_at_quiet_points
from .decoding import GreedyDecoder
from .errors import AudioError, BundleError, InputError
from .mel import LogMel, batch_features
from .parsing import merge_languages, parse_output
from .prompt import PromptBuilder, normalize_language
from .providers import SessionSettings, create_session, resolve_providers, session_device
from .results import DecodeOptions, Segment, Transcript
from .streaming import duration_of, stream_chunks
from .tokenizer import Tokenizer

log = logging.getLogger("qwen_asr_edge")


@dataclass(frozen=True)
class _Item:
    """One chunk of one recording, waiting to be decoded."""

    index: int  # which input it came from
    wav: np.ndarray
    offset: float
    duration: float
    context: str
    language: str | None


class Transcriber:
    """Load a bundle once, transcribe many recordings.

    ``providers``: "auto" (CUDA, then DirectML, then CPU), a short name ("cpu", "cuda", "dml")
    or a list of onnxruntime provider names. ``threads`` is a shortcut for
    ``SessionSettings(threads=...)``; ``settings`` sets the rest (see SessionSettings).
    ``verify`` checks every bundle file's sha256.
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
        settings = settings or SessionSettings()
        if threads is not None:
            settings = dataclasses.replace(settings, threads=threads)
        self.settings = settings
        self._providers = names
        self._aligner = None
        self.encoder = create_session(str(self.bundle.graph_path("encoder")), names, settings)
        self.decoder = create_session(str(self.bundle.graph_path("decoder")), names, settings)
        self.device = session_device(self.decoder)
        self.tokenizer = Tokenizer(self.bundle.file(manifest.tokenizer))
        self.prompts = PromptBuilder(manifest, self.tokenizer)
        self.mel = LogMel(manifest.mel)
        self.greedy = GreedyDecoder(self.decoder, self.device, manifest)
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

    @property
    def provider(self) -> str:
        return self.device.provider

    @property
    def precision(self) -> str:
        """The bundle's recipe: "fp32", "int8", "int4", "int4-gptq" or "fp16"."""
        return self.bundle.manifest.recipe

    @property
    def languages(self) -> list[str]:
        return list(self.bundle.manifest.languages)

    @property
    def aligner(self):
        """The bundle's forced aligner (sessions created on first use), for word times."""
        if self._aligner is None:
            from .aligner import Aligner

            self._aligner = Aligner(self.bundle, providers=self._providers, settings=self.settings)
        return self._aligner

    def load(self, audio: AudioInput) -> np.ndarray:
        """Decode and check one input: float32 mono at the model's rate, long enough for a frame."""
        rate = self.bundle.manifest.mel.sample_rate
        wav = load_audio(audio, rate)
        if wav.shape[0] < self.mel.min_samples():
            raise AudioError(
                describe(audio), f"too short: {wav.shape[0]} samples at {rate} Hz yield no frame"
            )
        return wav

    def chunk_seconds(self, options: DecodeOptions) -> float:
        """The longest chunk these options allow: with timestamps, no longer than the aligner's limit
        (as the official package cuts)."""
        if options.timestamps:
            return min(options.max_chunk_seconds, self.aligner.spec.max_seconds)
        return options.max_chunk_seconds

    def prepare(self, audio: AudioInput, options: DecodeOptions | None = None) -> AudioInput:
        """Check one input before decoding: a file longer than one chunk is checked by its header
        and returned as a path, to be streamed; anything else is decoded (``load``)."""
        wav, _ = self._prepare(audio, options or DecodeOptions())
        return audio if wav is None else wav

    def _prepare(self, audio: AudioInput, options: DecodeOptions) -> tuple[np.ndarray | None, float]:
        """(None, seconds) for a file to stream, else (samples, seconds)."""
        if isinstance(audio, (str, os.PathLike)):
            seconds = duration_of(audio)
            if seconds > self.chunk_seconds(options):
                return None, seconds
        wav = self.load(audio)
        return wav, wav.shape[0] / self.bundle.manifest.mel.sample_rate

    def transcribe(
        self,
        audio: AudioInput,
        *,
        language: str | None = None,
        context: str = "",
        options: DecodeOptions | None = None,
    ) -> Transcript:
        """Transcribe one recording: a path, an array at 16 kHz, or ``(array, sample_rate)``."""
        return self.transcribe_batch([audio], language=language, context=context, options=options)[0]

    def transcribe_batch(
        self,
        audios: Sequence[AudioInput],
        *,
        language: str | Sequence[str | None] | None = None,
        context: str | Sequence[str] = "",
        options: DecodeOptions | None = None,
    ) -> list[Transcript]:
        """Transcribe several recordings, decoding their chunks together in batches.

        Every input is checked before any decoding starts, so a bad file fails fast. Files longer
        than one chunk are streamed from disk a chunk at a time (memory does not grow with
        their length); only their header is checked up front.
        """
        options = options or DecodeOptions()
        n = len(audios)
        languages = _per_item(language, n, "language")
        contexts = _per_item(context, n, "context")
        supported = self.languages
        languages = [normalize_language(x, supported) if x and str(x).strip() else None for x in languages]
        rate = self.bundle.manifest.mel.sample_rate
        chunk_seconds = self.chunk_seconds(options)

        items: list[_Item] = []
        durations: list[float] = []
        streamed: list[int] = []
        for i, audio in enumerate(audios):
            wav, seconds = self._prepare(audio, options)
            durations.append(seconds)
            if wav is None:
                streamed.append(i)
                continue
            for chunk in split_at_quiet_points(wav, rate, chunk_seconds):
                items.append(
                    _Item(i, chunk.wav, chunk.offset, chunk.duration, contexts[i] or "", languages[i])
                )

        found: dict[int, list[Segment]] = {i: [] for i in range(n)}
        progress = _progress(sum(durations), options.progress)
        # Similar lengths together: less padding, fewer wasted decoder positions.
        order = sorted(range(len(items)), key=lambda k: items[k].wav.shape[0])
        # (input, offset, segment): no audio is kept once a chunk is decoded.
        decoded: list[tuple[int, float, Segment]] = []
        for start in range(0, len(order), options.batch_size):
            group = [items[k] for k in order[start : start + options.batch_size]]
            decoded += [
                (it.index, it.offset, seg)
                for it, seg in zip(group, self._decode(group, options), strict=True)
            ]
            progress.update(sum(it.duration for it in group))
        for i in streamed:
            chunks = stream_chunks(audios[i], rate, chunk_seconds)
            while group := [
                _Item(i, c.wav, c.offset, c.duration, contexts[i] or "", languages[i])
                for c in itertools.islice(chunks, options.batch_size)
            ]:
                decoded += [
                    (it.index, it.offset, seg)
                    for it, seg in zip(group, self._decode(group, options), strict=True)
                ]
                progress.update(sum(it.duration for it in group))
        progress.close()
        for index, _, segment in sorted(decoded, key=lambda entry: entry[:2]):
            found[index].append(segment)

        results = []
        for i, audio in enumerate(audios):
            mine = found[i]
            results.append(
                Transcript(
                    text="".join(s.text for s in mine),
                    language=merge_languages([s.language for s in mine]),
                    duration=durations[i],
                    segments=mine,
                    source=describe(audio),
                    provider=self.provider,
                    precision=self.precision,
                )
            )
        return results

    def _decode(self, items: list[_Item], options: DecodeOptions) -> list[Segment]:
        manifest = self.bundle.manifest
        features, lens = batch_features(
            self.mel, [it.wav for it in items], pad_to=manifest.encoder.chunk_frames
        )
        audio_embeds, audio_lens = self._encode(features, lens)
        prompts = [
            self.prompts.ids(int(n), it.context, it.language) for it, n in zip(items, audio_lens, strict=True)
        ]
        caps = [options.token_cap(it.duration) for it in items]
        generation = self.greedy.generate(
            prompts, audio_embeds, audio_lens, caps, stop=not options.ignore_stop
        )
        segments = []
        for it, tokens in zip(items, generation.tokens, strict=True):
            raw = self.tokenizer.decode(tokens)
            lang, text = parse_output(raw, it.language)
            words = []
            if options.timestamps:  # on the chunk as decoded, tail padding included (as official)
                words = self.aligner.words(it.wav, text, lang, it.offset)
            segments.append(Segment(it.offset, it.offset + it.duration, text, lang, tokens, words))
        return segments

    def _encode(self, features: np.ndarray, lens: np.ndarray):
        """Run the encoder; its embeddings stay on the device for the decoder to bind."""
        io = self.encoder.io_binding()
        io.bind_cpu_input("input_features", features)
        io.bind_cpu_input("feature_lens", lens)
        io.bind_output("audio_embeds", self.device.ort_device, self.device.device_id)
        io.bind_output("audio_embed_lens", "cpu")
        self.encoder.run_with_iobinding(io)
        embeds, out_lens = io.get_outputs()
        return embeds, out_lens.numpy()


def _per_item(value, n: int, what: str) -> list:
    if value is None or isinstance(value, str):
        return [value] * n
    values = list(value)
    if len(values) != n:
        raise InputError(f"{len(values)} {what} values for {n} recordings")
    return values


def _progress(total_seconds: float, wanted: bool):
    """A tqdm bar over audio seconds, on long work only and only when stderr is a terminal."""
    from tqdm import tqdm

    show = wanted and total_seconds > 60 and sys.stderr.isatty()
    return tqdm(total=round(total_seconds, 1), unit="s", unit_scale=True, disable=not show, leave=False)
