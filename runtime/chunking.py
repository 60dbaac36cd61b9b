"""Cut long recordings at quiet points, as the official package does (no VAD).

While more than ``max_seconds`` remain, the cut goes near ``start + max_seconds``: within ±5 s of
it, the 100 ms window with the least total |x| is found, and the cut lands on its quietest sample.
Chunks cover the audio exactly (no gap, no overlap); when there is more than one, a chunk
shorter than 0.5 s is zero-padded at its tail.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Chunk:
    wav: np.ndarray
    offset: float  # seconds from the start of the recording
    duration: float  # seconds of real audio (before any padding)


def quiet_cut(wav: np.ndarray, start: int, max_len: int, expand: int, win: int) -> int:
    """The cut after ``start``: the quietest sample of the quietest ``win`` window within
    ``expand`` samples of ``start + max_len``."""
    total = wav.shape[0]
    cut = start + max_len
    left, right = max(start, cut - expand), min(total, cut + expand)
    if right - left > win:
        level = np.abs(wav[left:right])
        sums = np.convolve(level, np.ones(win, dtype=np.float32), mode="valid")
        w = int(np.argmin(sums))
        cut = left + w + int(np.argmin(level[w : w + win]))
    return min(max(cut, start + 1), total)


def split_at_quiet_points(
    wav: np.ndarray,
    sample_rate: int,
    max_seconds: float,
    search_seconds: float = 5.0,
    window_ms: float = 100.0,
    min_seconds: float = 0.5,
) -> list[Chunk]:
    total = wav.shape[0]
    if total <= max_seconds * sample_rate:
        return [Chunk(wav, 0.0, total / sample_rate)]
    max_len = int(max_seconds * sample_rate)
    expand = int(search_seconds * sample_rate)
    win = max(4, int(window_ms / 1000.0 * sample_rate))
    bounds, start = [], 0
    while total - start > max_len:
        cut = quiet_cut(wav, start, max_len, expand, win)
        bounds.append((start, cut))
        start = cut
    bounds.append((start, total))
    return [padded_chunk(wav[a:b], a, sample_rate, min_seconds) for a, b in bounds]


def padded_chunk(piece: np.ndarray, start: int, sample_rate: int, min_seconds: float = 0.5) -> Chunk:
    """A chunk of a multi-chunk recording: shorter than ``min_seconds``, it is zero-padded."""
    duration = piece.shape[0] / sample_rate
    min_len = int(min_seconds * sample_rate)
    if piece.shape[0] < min_len:
        piece = np.pad(piece, (0, min_len - piece.shape[0]))
    return Chunk(piece, start / sample_rate, duration)
