"""Cut long recordings at quiet points, after the official ``split_audio_into_chunks`` (no VAD).

While more than ``max_seconds`` remain, the next cut goes at a quiet point no later than
``max_seconds`` after the chunk's start: within the ``search_seconds`` before that limit, the
100 ms window with the least total |x| is found, and the cut lands on its quietest sample.

Deliberate differences from the official function, whose search window is ±5 s around the limit:

- ``max_seconds`` is a maximum: the window ends at the limit instead of reaching 5 s past it (the
  official cutter makes 34.4 s chunks at 30 s, and 184 s ones at the aligner's 180 s limit). Our
  cuts are the official cuts of ``split_audio_into_chunks(wav, sr, max_seconds - s / 2, s / 2)``,
  s = ``search_seconds``: the same search, its window moved back by half its width.
- No chunk is shorter than ``min_seconds`` (1 s, one encoder chunk of 100 mel frames), nor than
  half the limit, except the last: the official window reaches back to the chunk's start when the
  limit is under 5 s, and it cuts 1-37 ms chunks that decode to invented sentences.
- The tail is never a sliver: when the rest after a cut at the limit would be shorter than
  ``min_seconds``, the window ends ``min_seconds`` before the recording's end (the official
  cutter leaves tails of any length, and pads those under 0.5 s with zeros; ours need no padding).

So every chunk of a recording longer than ``max_seconds`` lasts from ``min_seconds`` to
``max_seconds``, and the number of chunks is at most ``2 * total / max_seconds + 1``. This needs
``max_seconds >= 2 * min_seconds`` (``MIN_MAX_CHUNK_SECONDS``, which TranscriptionOptions enforces).

One cutter serves arrays and files: ``cut_at_quiet_points`` takes the samples as consecutive
blocks (an array is one block; a long file arrives a block at a time from ``audio.read_blocks``)
and makes each cut as soon as enough samples follow it to know the tail rule cannot apply, so a
file's chunks are exactly those of the whole array, while memory holds one chunk plus a little.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

MIN_CHUNK_SECONDS = 1.0
"""The shortest chunk of a multi-chunk recording: one encoder chunk (100 mel frames)."""
MIN_MAX_CHUNK_SECONDS = 2 * MIN_CHUNK_SECONDS
"""The smallest ``max_seconds`` for which every chunk can lie between the minimum and the limit."""


@dataclass(frozen=True)
class Chunk:
    """Attributes: wav (n,) float32 samples; offset, seconds from the start of the recording;
    duration, seconds of audio (n / sample rate)."""

    wav: np.ndarray
    offset: float
    duration: float


def quiet_cut(wav: np.ndarray, lo: int, hi: int, win: int) -> int:
    """The quietest sample of the quietest ``win``-sample window in ``wav[lo:hi]``, as the
    official cutter picks it; of the whole span when it is no wider than one window."""
    level = np.abs(wav[lo:hi])
    if level.shape[0] <= win:
        return lo + int(np.argmin(level))
    sums = np.convolve(level, np.ones(win, dtype=np.float32), mode="valid")
    w = int(np.argmin(sums))
    return lo + w + int(np.argmin(level[w : w + win]))


def cut_window(rest: int, max_len: int, min_len: int, search: int) -> tuple[int, int]:
    """Where the next cut may go, in samples after the chunk's start, with ``rest`` samples left
    (``rest > max_len >= 2 * min_len``): the span [lo, hi), min_len <= lo < hi <= max_len and
    ``rest - hi >= min_len``, so both the chunk and what follows it are at least ``min_len``.
    (Half-open, as the official window is: at the official lengths the two cut alike.)"""
    hi = min(max_len, rest - min_len)  # > max_len - min_len >= min_len
    lo = min(max(min_len, max_len // 2, max_len - search), hi - 1)
    return lo, hi


def cut_at_quiet_points(
    blocks: Iterable[np.ndarray],
    sample_rate: int,
    max_seconds: float,
    search_seconds: float = 5.0,
    window_ms: float = 100.0,
    min_seconds: float = MIN_CHUNK_SECONDS,
) -> Iterator[Chunk]:
    """Chunks of at most ``max_seconds`` from a recording given as consecutive sample blocks.

    Args:
        blocks: (n,) float32 mono blocks at ``sample_rate``, in order; any sizes.
        sample_rate: Hz.
        max_seconds: The longest chunk; at least ``2 * min_seconds``.
        search_seconds: How far before the limit to look for a quiet point.
        window_ms: The window whose summed |x| is minimised.
        min_seconds: The shortest chunk of a recording longer than ``max_seconds``.

    Yields:
        Chunks in time order, covering the recording exactly (no gap, no overlap, no padding);
        nothing for an empty recording; one chunk for a recording of at most ``max_seconds``.

    Raises:
        ValueError: ``max_seconds`` below ``2 * min_seconds``.
    """
    if not (2 * min_seconds <= max_seconds < math.inf):  # NaN too
        raise ValueError(f"max_seconds must be at least {2 * min_seconds:g}, got {max_seconds}")
    max_len = int(max_seconds * sample_rate)
    min_len = int(min_seconds * sample_rate)  # floors: 2 * min_len <= max_len
    search = int(search_seconds * sample_rate)
    win = max(4, int(window_ms / 1000.0 * sample_rate))
    buffer = np.zeros(0, dtype=np.float32)
    offset = 0  # samples of the recording before buffer[0]
    for block in blocks:
        buffer = np.concatenate([buffer, block]) if buffer.size else block
        # Cut once min_len samples follow the limit: then the tail rule cannot move this cut.
        while buffer.shape[0] >= max_len + min_len:
            lo, hi = cut_window(buffer.shape[0], max_len, min_len, search)
            cut = quiet_cut(buffer, lo, hi, win)
            yield Chunk(buffer[:cut], offset / sample_rate, cut / sample_rate)
            buffer, offset = buffer[cut:], offset + cut
    start = 0
    while buffer.shape[0] - start > max_len:
        lo, hi = cut_window(buffer.shape[0] - start, max_len, min_len, search)
        cut = start + quiet_cut(buffer[start:], lo, hi, win)
        yield Chunk(buffer[start:cut], (offset + start) / sample_rate, (cut - start) / sample_rate)
        start = cut
    if buffer.shape[0] > start:
        rest = buffer[start:]
        yield Chunk(rest, (offset + start) / sample_rate, rest.shape[0] / sample_rate)


def split_at_quiet_points(wav: np.ndarray, sample_rate: int, max_seconds: float, **options) -> list[Chunk]:
    """``cut_at_quiet_points`` over one array: (n,) float32 -> its chunks."""
    return list(cut_at_quiet_points([wav], sample_rate, max_seconds, **options))
