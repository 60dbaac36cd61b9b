"""What transcription returns, and the options it takes: frozen dataclasses."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class DecodeOptions:
    """How to decode. ``max_new_tokens=None`` caps each chunk by its length (see token_cap)."""

    max_new_tokens: int | None = None
    batch_size: int = 8  # chunks decoded together in one decoder batch
    # Longer recordings are cut at quiet points into chunks of at most this (the official package:
    # 1200 s, or 180 s with timestamps). 30 s keeps a chunk's KV cache near 0.2 GB (0.6B, fp32).
    max_chunk_seconds: float = 30.0
    tokens_per_second: float = 16.0  # length-based cap: ~2x the densest real speech
    min_token_cap: int = 32
    # Benchmarks only: decode exactly the token cap, ignoring stop ids, so runs compare equal work.
    ignore_stop: bool = False
    # Word times from the bundle's aligner; chunks are then cut at the aligner's limit (180 s).
    timestamps: bool = False
    progress: bool = False  # a progress bar on stderr for long work, when it is a terminal

    def __post_init__(self):
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.max_chunk_seconds <= 0.5:
            raise ValueError("max_chunk_seconds must be longer than 0.5")

    def token_cap(self, seconds: float) -> int:
        if self.max_new_tokens is not None:
            return self.max_new_tokens
        return self.min_token_cap + int(self.tokens_per_second * seconds + 0.999)


@dataclass(frozen=True)
class Word:
    """One aligned unit: a word, or one CJK character; times in seconds of the recording."""

    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Segment:
    start: float  # seconds in the recording
    end: float
    text: str
    language: str
    tokens: list[int] = field(default_factory=list)  # generated ids, stop id included
    words: list[Word] = field(default_factory=list)  # with timestamps: the aligner's word times


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str  # "" when undetected; "Chinese,English" when chunks differ, as the official package
    duration: float  # seconds
    segments: list[Segment]
    source: str = ""  # file name, or a description of the array
    provider: str = ""
    precision: str = ""

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "language": self.language,
            "text": self.text,
            "duration": round(self.duration, 3),
            "segments": [
                {
                    "start": round(s.start, 3),
                    "end": round(s.end, 3),
                    "language": s.language,
                    "text": s.text,
                    **({"words": [asdict(w) for w in s.words]} if s.words else {}),
                }
                for s in self.segments
            ],
        }

    @property
    def words(self) -> list[Word]:
        return [w for s in self.segments for w in s.words]
