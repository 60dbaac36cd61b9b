"""Aligner: audio and its transcript in, a start and end time for every word out.

Qwen3-ForcedAligner (spec §6) in one causal pass: the prompt is
``<|audio_start|> audio×N <|audio_end|> w1 <timestamp><timestamp> w2 <timestamp><timestamp> …``
(words concatenated without spaces), the graph gives a class per position, and the classes at
the timestamp slots, times ``segment_ms``, are each word's start and end after the monotonic
repair.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np

from .alignment import repair_timestamps, split_words
from .audio import AudioInput, describe, load_audio
from .bundle import Bundle, load_bundle
from .errors import AudioError, BundleError, InputError
from .mel import LogMel
from .prompt import checked_text, normalize_language
from .providers import SessionSettings, create_session, resolve_providers
from .results import Word
from .tokenizer import Tokenizer

log = logging.getLogger("qwen_asr_edge")

# A transcript given to `align` with more units (words; CJK characters) than this a second of audio,
# or than MIN_UNITS for a short clip, is not the audio's: speech rarely passes 4-5 a second, and
# the aligner attends over its whole prompt at once (memory grows with its square).
MAX_UNITS_PER_SECOND = 20
MIN_UNITS = 50


class Aligner:
    """Load a bundle that holds aligner graphs (``export ... --aligner SRC``), align many texts.

    Args:
        bundle: A bundle folder or a loaded Bundle.
        providers: As for Transcriber ("auto", "cpu", "cuda", "dml", or provider names).
        verify: Check every bundle file's sha256.
        settings: onnxruntime session settings.

    Raises:
        BundleError: the bundle holds no aligner (or is missing, altered, unknown).
    """

    def __init__(
        self,
        bundle: str | os.PathLike | Bundle,
        providers: str | Sequence[str] = "auto",
        verify: bool = True,
        settings: SessionSettings | None = None,
    ):
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle, verify=verify)
        manifest = self.bundle.manifest
        if manifest.aligner is None:
            raise BundleError(
                self.bundle.path, "holds no aligner", "export it with --aligner Qwen/Qwen3-ForcedAligner-0.6B"
            )
        self.spec = manifest.aligner
        names = resolve_providers(providers)
        self._encoder = create_session(str(self.bundle.graph_path("aligner_encoder")), names, settings)
        self._text = create_session(str(self.bundle.graph_path("aligner")), names, settings)
        self.tokenizer = Tokenizer(self.bundle.file(manifest.tokenizer))
        self._mel = LogMel(manifest.mel)
        self.tokens = manifest.tokens

    def end_profiling(self) -> dict[str, str]:
        """Ends onnxruntime's profiling of the "aligner_encoder" and "aligner" sessions (made with
        ``SessionSettings(profile=PREFIX)``) and writes their traces: {session name: path}."""
        return {"aligner_encoder": self._encoder.end_profiling(), "aligner": self._text.end_profiling()}

    @property
    def languages(self) -> list[str]:
        return list(self.spec.languages)

    def prompt(self, units: list[str], n_audio: int) -> np.ndarray:
        """(L,) int64 ids: the audio, then each unit followed by its start and end slots."""
        t, slot = self.tokens, self.spec.timestamp_token_id
        ids = [t.audio_start, *([t.audio_pad] * n_audio), t.audio_end]
        for unit in units:
            ids += [*self.tokenizer.encode(unit), slot, slot]
        return np.asarray(ids, dtype=np.int64)

    def align(self, audio: AudioInput, text: str, language: str) -> list[Word]:
        """Word times for a known transcript, as the official ``Qwen3ForcedAligner.align``.

        Args:
            audio: A path, a numpy array at 16 kHz, or ``(array, rate)``; at most
                ``spec.max_seconds`` (180 s).
            text: What is said in it.
            language: One of ``languages`` (a name or an ISO code); it decides how the text is
                split into units (words; CJK characters one by one).

        Returns:
            One Word per unit, in order; ``start`` and ``end`` in seconds from the start of the
            audio (80 ms steps), non-decreasing.

        Raises:
            InputError: an unsupported language, text that is not valid UTF-8, text with nothing
                to align, or more words than the audio could hold (``MAX_UNITS_PER_SECOND``).
            AudioError: unreadable audio, longer than the aligner's limit, or too short.
        """
        language = normalize_language(language, self.languages)
        units = split_words(checked_text(text, "the transcript"), language)
        if not units:
            raise InputError(f"the text has nothing to align (no letters or digits): {text[:80]!r}")
        rate = self.bundle.manifest.mel.sample_rate
        wav = load_audio(audio, rate)
        seconds = wav.shape[0] / rate
        if seconds > self.spec.max_seconds:
            raise AudioError(
                describe(audio),
                f"{seconds:.1f} s is longer than the aligner's {self.spec.max_seconds:.0f} s: "
                "align it in pieces, or use `transcribe --timestamps`, which cuts long audio",
            )
        if wav.shape[0] < self._mel.min_samples():
            raise AudioError(describe(audio), "too short for one mel frame")
        most = max(MIN_UNITS, round(MAX_UNITS_PER_SECOND * seconds))
        if len(units) > most:  # the whole prompt is attended at once: 40,000 words ran out of memory
            raise InputError(
                f"the transcript has {len(units)} words for {seconds:.1f} s of audio; at most {most} are "
                f"aligned ({MAX_UNITS_PER_SECOND} a second, {MIN_UNITS} for any clip: faster than anyone "
                "speaks): is it this audio's transcript?"
            )
        return self._align(wav, units)

    def words(self, wav: np.ndarray, text: str, language: str | None, offset: float = 0.0) -> list[Word]:
        """For transcription: the chunk's own text in the detected language (any name; unknown
        ones and "" split at whitespace, as the official package does), times from ``offset``."""
        units = split_words(text, language or "")
        if not units or wav.shape[0] < self._mel.min_samples():
            return []
        return [
            Word(w.text, round(w.start + offset, 3), round(w.end + offset, 3))
            for w in self._align(wav, units)
        ]

    def encode(self, wav: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The aligner's encoder on one clip.

        Args:
            wav: (n,) float32 mono at 16 kHz, at least one mel frame long.

        Returns:
            ((1, A, H) float32 audio embeddings, (1,) int64 their length A).
        """
        feats = self._mel(wav)[None]
        embeds, lens = self._encoder.run(
            None, {"input_features": feats, "feature_lens": np.array([feats.shape[2]])}
        )
        return embeds, lens

    def classify(
        self, ids: np.ndarray, embeds: np.ndarray, lens: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The aligner's causal pass over a prompt from ``prompt``.

        Returns:
            ((L, classes) float32 logits, (L,) int64 argmax class per position; at the
            timestamp slots, class k means k * ``spec.segment_ms``).
        """
        logits, classes = self._text.run(
            ["logits", "classes"], {"input_ids": ids[None], "audio_embeds": embeds, "audio_embed_lens": lens}
        )
        return logits[0], classes[0]

    def _align(self, wav: np.ndarray, units: list[str]) -> list[Word]:
        embeds, lens = self.encode(wav)
        ids = self.prompt(units, int(lens[0]))
        _, classes = self.classify(ids, embeds, lens)
        raw = classes[ids == self.spec.timestamp_token_id] * self.spec.segment_ms
        ms = repair_timestamps(raw)
        return [
            Word(unit, round(ms[2 * i] / 1000.0, 3), round(ms[2 * i + 1] / 1000.0, 3))
            for i, unit in enumerate(units)
        ]
