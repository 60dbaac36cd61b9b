"""What transcription returns: frozen dataclasses, times in seconds of the recording."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .options import TranscriptionOptions
from .text import join_texts


@dataclass(frozen=True)
class Word:
    """One aligned unit: a word, or one CJK character.

    Attributes:
        text: The unit as the aligner split it (no surrounding punctuation).
        start, end: Seconds from the start of the recording (80 ms steps, the aligner's classes).
        probability: Mean probability of the decoder tokens that spell the word (as
            faster-whisper's ``Word.probability``); ``None`` for ``align``, which decodes nothing.
    """

    text: str
    start: float
    end: float
    probability: float | None = None


@dataclass(frozen=True)
class Segment:
    """One decoded chunk of a recording.

    Attributes:
        start, end: Seconds in the recording (``end`` excludes any zero padding).
        text: The chunk's text, without the ``language X<asr_text>`` prefix or any other model
            control markup (parsing.parse_transcript); "" when ``reached_text`` is False.
        language: The chunk's language name ("" when the model heard no speech or named none).
        tokens: Generated token ids, the stop id included (a chunk the repetition guard
            stopped has none: its tokens end after the loop's first unit).
        words: With ``word_timestamps``: the aligner's word times.
        avg_logprob: Mean log-probability of the generated tokens (natural log), with
            ``log_probs`` or ``word_timestamps``; else ``None``.
        language_probability: Probability of ``language`` among the language names at the
            position where the model names it (1.0 when the language was forced; ``None`` when
            the model named none).
        finish_reason: "stop" when the model ended the chunk, "length" when it reached its
            token cap (``TranscriptionOptions.token_cap``), so its text may be cut short or a
            repetition (as OpenAI's completions say), "repetition" when the repetition guard
            stopped it in a loop (``TranscriptionOptions.repetition_guard``): its text keeps one
            copy of what repeated, and speech after the loop may be missing.
        reached_text: False when the model's output never reached ``<asr_text>`` (its output
            was no transcript: silence, noise), so ``text`` is "". Always True when the
            language was forced.
    """

    start: float
    end: float
    text: str
    language: str
    tokens: list[int] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    avg_logprob: float | None = None
    language_probability: float | None = None
    finish_reason: str = "stop"
    reached_text: bool = True


@dataclass(frozen=True)
class Timings:
    """Seconds spent on one recording's batches (a batch shared with other recordings counts whole).

    Attributes:
        encode: Per batch: log-mel features and the encoder.
        prefill: Per batch: the decoder's prefill call.
        steps: Per decode call, in order: one decoder call each.
    """

    encode: list[float] = field(default_factory=list)
    prefill: list[float] = field(default_factory=list)
    steps: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Transcript:
    """One recording's transcription.

    Attributes:
        text: All segments' texts joined as their language writes (text.join_texts: a space
            between chunks, none next to Chinese or Japanese characters; the official package
            joins with nothing).
        language: The main language: the one whose segments cover the most audio ("" if none).
        duration: Seconds of audio.
        segments: The decoded chunks in time order.
        source: The file name, or a description of the array.
        provider: The onnxruntime execution provider that ran it.
        precision: The bundle's recipe ("fp32", "int8", "int4", "int4-gptq", "fp16").
        languages: Per-segment languages, empty ones and consecutive repeats dropped;
            ``",".join(languages)`` is what the official package reports as ``language``.
        language_probability: ``language``'s probability in its first segment (see Segment).
        options: The options it was transcribed with.
        timings: Where the time went.
    """

    text: str
    language: str
    duration: float
    segments: list[Segment]
    source: str = ""
    provider: str = ""
    precision: str = ""
    languages: list[str] = field(default_factory=list)
    language_probability: float | None = None
    options: TranscriptionOptions | None = None
    timings: Timings = field(default_factory=Timings)

    @classmethod
    def of(cls, segments: list[Segment], duration: float, **details) -> Transcript:
        """Assemble a transcript from its segments (in time order)."""
        seconds: Counter[str] = Counter()
        for s in segments:
            if s.language:
                seconds[s.language] += s.end - s.start
        language = max(seconds, key=seconds.__getitem__) if seconds else ""  # first among ties
        first = next((s for s in segments if s.language == language), None)
        return cls(
            text=join_texts(s.text for s in segments),
            language=language,
            duration=duration,
            segments=segments,
            languages=language_runs([s.language for s in segments]),
            language_probability=first.language_probability if first else None,
            **details,
        )

    def to_dict(self) -> dict:
        """The CLI's JSON: source, language(s), text, duration and segments (words with times)."""
        return {
            "source": self.source,
            "language": self.language,
            "languages": self.languages,
            "language_probability": _rounded(self.language_probability),
            "text": self.text,
            "duration": round(self.duration, 3),
            "segments": [
                {
                    "start": round(s.start, 3),
                    "end": round(s.end, 3),
                    "language": s.language,
                    "text": s.text,
                    "finish_reason": s.finish_reason,
                    "reached_text": s.reached_text,
                    **({"avg_logprob": _rounded(s.avg_logprob)} if s.avg_logprob is not None else {}),
                    **(
                        {
                            "words": [
                                {"text": w.text, "start": w.start, "end": w.end}
                                | (
                                    {"probability": _rounded(w.probability)}
                                    if w.probability is not None
                                    else {}
                                )
                                for w in s.words
                            ]
                        }
                        if s.words
                        else {}
                    ),
                }
                for s in self.segments
            ],
        }

    @property
    def words(self) -> list[Word]:
        return [w for s in self.segments for w in s.words]


def language_runs(languages: list[str]) -> list[str]:
    """Languages in order, empty ones and consecutive repeats dropped (the official
    ``merge_languages``, as a list)."""
    out: list[str] = []
    for lang in (x.strip() for x in languages):
        if lang and (not out or out[-1] != lang):
            out.append(lang)
    return out


def _rounded(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)
