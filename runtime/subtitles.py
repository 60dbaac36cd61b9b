"""Subtitle cues from a transcript: word times grouped into readable lines, or whole segments.

A cue ends before it would pass ``max_chars`` characters or ``max_seconds``, and at a pause of
``max_gap`` seconds between words. Word times are clamped to their segment (the aligner's 80 ms
classes reach 400 s, past a short chunk's end). A cue's text is the stretch of its segment's text
from its first word to the next cue's, so it keeps the punctuation, case and spacing the model
wrote (the aligner's units have no punctuation); when the words are not the segment's text, they
are joined as the language writes (text.separator). Without word times every segment is one cue.
"""

from __future__ import annotations

from dataclasses import dataclass

from .results import Segment, Transcript, Word
from .text import separator, word_spans


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str


def _join(words: list[Word]) -> str:
    """Units joined as their language writes: no space next to CJK characters or kana."""
    text = ""
    for w in words:
        text += w.text if not text or not w.text else separator(text, w.text) + w.text
    return text


def _one_line(text: str) -> str:
    """Whitespace runs made one space: a blank line would end an srt or vtt cue early."""
    return " ".join(text.split())


def _cue_texts(seg: Segment):
    """A function (i, j) -> the text of the cue made of ``seg.words[i:j]``."""
    spans = word_spans(seg.text, [w.text for w in seg.words])
    if spans is None:
        return lambda i, j: _join(seg.words[i:j])
    # A cue runs from its first word (the text's start, for the first) to the next cue's first word.
    starts = [0] + [a for a, _ in spans[1:]] + [len(seg.text)]
    return lambda i, j: _one_line(seg.text[starts[i] : starts[j]])


def cues(
    transcript: Transcript, max_chars: int = 42, max_seconds: float = 5.0, max_gap: float = 1.0
) -> list[Cue]:
    out: list[Cue] = []
    for seg in transcript.segments:
        if not seg.words:
            if seg.text.strip():
                out.append(Cue(seg.start, seg.end, _one_line(seg.text)))
            continue
        text = _cue_texts(seg)
        first = 0  # the group is seg.words[first:j]

        # The aligner's classes reach 400 s; a cue must stay inside the audio it came from.
        def clamp(t: float, seg=seg) -> float:
            return min(max(t, seg.start), seg.end)

        words = [Word(w.text, clamp(w.start), clamp(w.end)) for w in seg.words]
        for j, w in enumerate(words):
            if j > first and (
                len(text(first, j + 1)) > max_chars
                or w.end - words[first].start > max_seconds
                or w.start - words[j - 1].end > max_gap
            ):
                out.append(Cue(words[first].start, words[j - 1].end, text(first, j)))
                first = j
        if words:
            out.append(Cue(words[first].start, words[-1].end, text(first, len(words))))
    # Players drop zero-length cues and overlaps confuse them: keep each at least 1 ms, in order.
    fixed: list[Cue] = []
    for c in out:
        start = max(c.start, fixed[-1].end) if fixed else c.start
        fixed.append(Cue(start, max(c.end, start + 0.001), c.text))
    return fixed


def timestamp(seconds: float, decimal: str) -> str:
    ms = round(seconds * 1000)
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{decimal}{ms:03d}"
