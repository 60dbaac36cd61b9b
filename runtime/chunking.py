"""Cut long recordings at quiet points, as the official ``split_audio_into_chunks`` does (no VAD).

While more than ``max_seconds`` remain, the cut goes near ``start + max_seconds``: within ±5 s of
it, the 100 ms window with the least total |x| is found, and the cut lands on its quietest sample
(so a chunk can be up to 5 s longer than ``max_seconds``, as in the official package).
Chunks cover the audio exactly (no gap, no overlap); when there is more than one, a chunk
shorter than 0.5 s is zero-padded at its tail.

One cutter serves arrays and files: ``cut_at_quiet_points`` takes the samples as consecutive
blocks (an array is one block; a long file arrives a block at a time from ``audio.read_blocks``)
and makes each cut as soon as the search window after it is complete, so a file's chunks are
exactly those of the whole array, while memory holds one chunk plus the window.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Chunk:
    """Attributes: wav (n,) float32 samples; offset, seconds from the start of the recording;
    duration, seconds of real audio (before any padding)."""

    wav: np.ndarray
    offset: float
    duration: float


def quiet_cut(wav: np.ndarray, start: int, max_len: int, expand: int, win: int) -> int:
    """The cut after ``start``: the quietest sample of the quietest ``win`` window within
    ``expand`` samples of ``start + max_len``, and never in the chunk's first half. (The official
    window reaches back to ``start`` when ``max_len <= expand``: on digital silence every cut then
    lands one sample in, and a minute of audio becomes a million chunks. At the official lengths,
    over 10 s, the two are the same.)"""
    total = wav.shape[0]
    cut = start + max_len
    left, right = max(start + max_len // 2, cut - expand), min(total, cut + expand)
    if right - left > win:
        level = np.abs(wav[left:right])
        sums = np.convolve(level, np.ones(win, dtype=np.float32), mode="valid")
        w = int(np.argmin(sums))
        cut = left + w + int(np.argmin(level[w : w + win]))
    return min(max(cut, start + 1), total)


def cut_at_quiet_points(
    blocks: Iterable[np.ndarray],
    sample_rate: int,
    max_seconds: float,
    search_seconds: float = 5.0,
    window_ms: float = 100.0,
    min_seconds: float = 0.5,
) -> Iterator[Chunk]:
    """Chunks of at most ``max_seconds`` from a recording given as consecutive sample blocks.

    Args:
        blocks: (n,) float32 mono blocks at ``sample_rate``, in order; any sizes.
        sample_rate: Hz.
        max_seconds: The longest chunk.
        search_seconds: How far either side of the nominal cut to look for a quiet point.
        window_ms: The window whose summed |x| is minimised.
        min_seconds: Chunks of a multi-chunk recording shorter than this are zero-padded.

    Yields:
        Chunks in time order; nothing for an empty recording.
    """
    max_len = int(max_seconds * sample_rate)
    expand = int(search_seconds * sample_rate)
    win = max(4, int(window_ms / 1000.0 * sample_rate))
    buffer = np.zeros(0, dtype=np.float32)
    offset = 0  # samples of the recording before buffer[0]
    emitted = 0
    for block in blocks:
        buffer = np.concatenate([buffer, block]) if buffer.size else block
        # Cut while the search window after the nominal cut is complete.
        while buffer.shape[0] > max_len + expand:
            cut = quiet_cut(buffer, 0, max_len, expand, win)
            yield _padded(buffer[:cut], offset, sample_rate, min_seconds)
            emitted += 1
            buffer, offset = buffer[cut:], offset + cut
    start = 0
    while buffer.shape[0] - start > max_len:
        cut = quiet_cut(buffer, start, max_len, expand, win)
        yield _padded(buffer[start:cut], offset + start, sample_rate, min_seconds)
        emitted += 1
        start = cut
    rest = buffer[start:]
    if rest.size and emitted:
        yield _padded(rest, offset + start, sample_rate, min_seconds)
    elif rest.size:  # the whole recording in one chunk: never padded
        yield Chunk(rest, 0.0, rest.shape[0] / sample_rate)


def split_at_quiet_points(wav: np.ndarray, sample_rate: int, max_seconds: float, **options) -> list[Chunk]:
    """``cut_at_quiet_points`` over one array: (n,) float32 -> its chunks."""
    return list(cut_at_quiet_points([wav], sample_rate, max_seconds, **options))


def _padded(piece: np.ndarray, start: int, sample_rate: int, min_seconds: float) -> Chunk:
    """A chunk of a multi-chunk recording: shorter than ``min_seconds``, it is zero-padded."""
    duration = piece.shape[0] / sample_rate
    min_len = int(min_seconds * sample_rate)
    if piece.shape[0] < min_len:
        piece = np.pad(piece, (0, min_len - piece.shape[0]))
    return Chunk(piece, start / sample_rate, duration)
