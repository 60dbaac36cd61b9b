"""Subtitle cues from a transcript: word times grouped into readable lines, or whole segments.

A cue ends before it would pass ``max_chars`` characters or ``max_seconds``, and at a pause of
``max_gap`` seconds between words. Word times are clamped to their segment (the aligner's 80 ms
classes reach 400 s, past a short chunk's end). Words are joined with spaces, except CJK units, which are
joined directly. Without word times every segment is one cue.
"""

from __future__ import annotations

from dataclasses import dataclass

from .alignment import is_cjk
from .results import Transcript, Word


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str


def _join(words: list[Word]) -> str:
    text = ""
    for w in words:
        cjk = is_cjk(w.text[0]) or (text and is_cjk(text[-1]))
        text += w.text if not text or cjk else " " + w.text
    return text


def cues(
    transcript: Transcript, max_chars: int = 42, max_seconds: float = 5.0, max_gap: float = 1.0
) -> list[Cue]:
    out: list[Cue] = []
    for seg in transcript.segments:
        if not seg.words:
            if seg.text.strip():
                out.append(Cue(seg.start, seg.end, seg.text.strip()))
            continue
        group: list[Word] = []

        # The aligner's classes reach 400 s; a cue must stay inside the audio it came from.
        def clamp(t: float, seg=seg) -> float:
            return min(max(t, seg.start), seg.end)

        for w in (Word(w.text, clamp(w.start), clamp(w.end)) for w in seg.words):
            if group and (
                len(_join([*group, w])) > max_chars
                or w.end - group[0].start > max_seconds
                or w.start - group[-1].end > max_gap
            ):
                out.append(Cue(group[0].start, group[-1].end, _join(group)))
                group = []
            group.append(w)
        if group:
            out.append(Cue(group[0].start, group[-1].end, _join(group)))
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
