"""How to transcribe: one frozen options type, shared by the Python API and the CLI (whose
defaults are read from here, never restated)."""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .chunking import MIN_MAX_CHUNK_SECONDS
from .repetition import DEFAULT_GUARD, RepetitionGuard
from .vad import VadOptions

# Chunks decoded together at most: beyond this, memory (a KV cache per row) fails long before speed gains.
MAX_BATCH_SIZE = 1024


_KINDS = {"int": "a whole number", "number": "a number", "bool": "True or False"}


def require_type(name: str, value: Any, kind: str) -> Any:
    """An option's value as a Python int, float or bool, refused when of the wrong kind, naming
    the option: "int" (numpy's integers too), "number" (an int or float) or "bool"; a bool is
    never taken for a number.

    Raises:
        TypeError: ``name must be ...; got VALUE (TYPE)``.
    """
    number = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if kind == "int" and number and isinstance(value, numbers.Integral):
        return int(value)
    if kind == "number" and number:
        return value if type(value) in (int, float) else float(value)
    if kind == "bool" and isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be {_KINDS[kind]}; got {value!r} ({type(value).__name__})")


@dataclass(frozen=True)
class TranscriptionOptions:
    """Options of ``Transcriber.transcribe``, ``transcribe_batch`` and ``iter_segments``.

    Attributes:
        max_new_tokens: Token cap per chunk, its stop id included; ``None`` ties the cap to the
            chunk's length (the language prefix + ``tokens_per_second`` per second, see
            ``token_cap``). A chunk that reaches its cap says so (``Segment.finish_reason``).
        batch_size: Chunks decoded together in one decoder batch.
        max_chunk_seconds: Recordings longer than this are cut at quiet points into chunks of at
            most this many seconds and at least 1 s (chunking.py; the official package uses
            1200 s, and 180 s with word timestamps). 30 s keeps a chunk's KV cache near 0.2 GB
            (0.6B, fp32). At least 2 s, so that both sides of every cut can be 1 s long.
        tokens_per_second: Slope of the length-based cap: about twice the densest real speech
            (fast Mandarin, ~8 characters per second, about one token each).
        word_timestamps: Word start and end times from the bundle's forced aligner; chunks are then
            cut at the aligner's limit (180 s, as the official package cuts) and each word gets a
            ``probability`` from the decoder's log-probabilities.
        log_probs: Compute each generated token's log-probability (one log-softmax per decode
            step) for ``Segment.avg_logprob``; off by default to keep the decode loop lean.
        ignore_stop: Decode exactly the token cap, ignoring stop ids and the repetition guard
            (benchmarks: equal work).
        repetition_guard: Stop a chunk's decoding as soon as its last tokens are a loop (a unit
            repeated far more often than speech does, see repetition.py) and keep one copy of the
            unit, as the official repair of the text would; the chunk says so
            (``Segment.finish_reason`` "repetition"). None decodes loops to the token cap, as the
            official package does (its repair of the text applies either way).
        progress: A progress bar over audio seconds on stderr, for long work on a terminal.
        vad_filter: Decode only the speech that silero VAD finds (faster-whisper's ``vad_filter``):
            non-speech is dropped and chunks are cut at speech pauses, each one a contiguous span of
            the recording (see vad.speech_chunks); a recording with no speech gives no segments.
            Needs the [vad] extra.
        vad_parameters: With ``vad_filter``, how speech is found (None: VadOptions' defaults).

    Raises:
        TypeError: a field of another type: a string or float for a whole number ("8", 2.5), a
            string for seconds, anything but True or False for a switch, a ``vad_parameters``
            that is not a VadOptions or None.
        ValueError: ``max_new_tokens`` below 1, ``batch_size`` not within 1 to ``MAX_BATCH_SIZE``,
            ``max_chunk_seconds`` below 2 s (or not finite), ``tokens_per_second`` not above 0
            (or not finite), or a ``repetition_guard`` that is not a RepetitionGuard or None.
            ``Transcriber.check_options`` also refuses chunks and caps beyond the model's positions.
    """

    max_new_tokens: int | None = None
    batch_size: int = 8
    max_chunk_seconds: float = 30.0
    tokens_per_second: float = 16.0
    word_timestamps: bool = False
    log_probs: bool = False
    ignore_stop: bool = False
    repetition_guard: RepetitionGuard | None = DEFAULT_GUARD
    progress: bool = False
    vad_filter: bool = False
    vad_parameters: VadOptions | None = None

    def __post_init__(self):
        kinds = {"batch_size": "int", "max_chunk_seconds": "number", "tokens_per_second": "number"}
        switches = ("word_timestamps", "log_probs", "ignore_stop", "progress", "vad_filter")
        kinds |= dict.fromkeys(switches, "bool")
        if self.max_new_tokens is not None:
            kinds["max_new_tokens"] = "int"
        for name, kind in kinds.items():  # numpy's numbers become Python's (the JSON of settings)
            object.__setattr__(self, name, require_type(name, getattr(self, name), kind))
        if not (self.vad_parameters is None or isinstance(self.vad_parameters, VadOptions)):
            raise TypeError(f"vad_parameters must be a VadOptions or None; got {self.vad_parameters!r}")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_SIZE}")
        if not (self.max_chunk_seconds >= MIN_MAX_CHUNK_SECONDS and math.isfinite(self.max_chunk_seconds)):
            raise ValueError(
                f"max_chunk_seconds must be a number of seconds, at least {MIN_MAX_CHUNK_SECONDS:g} "
                f"(chunks are at least 1 s long); got {self.max_chunk_seconds}"
            )
        if not (self.tokens_per_second > 0 and math.isfinite(self.tokens_per_second)):
            raise ValueError(f"tokens_per_second must be above 0; got {self.tokens_per_second}")
        if not (self.repetition_guard is None or isinstance(self.repetition_guard, RepetitionGuard)):
            raise ValueError(
                f"repetition_guard must be a RepetitionGuard or None (off); got {self.repetition_guard!r}"
            )

    @property
    def wants_log_probs(self) -> bool:
        """Whether decoding must compute token log-probabilities (asked for, or for word ones)."""
        return self.log_probs or self.word_timestamps

    def token_cap(self, seconds: float, prefix_tokens: int = 0) -> int:
        """The most tokens a chunk of ``seconds`` may generate, its stop id included.

        ``max_new_tokens`` when set; else ``prefix_tokens`` (the longest ``language X<asr_text>``
        in the bundle's tokens: 4 for Qwen3-ASR) + ``ceil(tokens_per_second * seconds)`` + 1 for
        the stop id. So 20 ms of audio may have 1 token of text, not a sentence, and 30 s may
        have 480.
        """
        if self.max_new_tokens is not None:
            return self.max_new_tokens
        return prefix_tokens + math.ceil(self.tokens_per_second * seconds) + 1

    def to_dict(self) -> dict:
        return asdict(self)


DEFAULTS = TranscriptionOptions()
