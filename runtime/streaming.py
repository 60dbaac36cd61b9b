"""Long recordings read from disk a block at a time and cut at quiet points as they arrive.

Memory stays bounded by the chunk length, whatever the file's length: blocks are decoded,
mixed down and resampled (soxr's streaming resampler) into a buffer, and as soon as the buffer
holds a chunk plus the ±5 s search window the cut is made exactly as ``split_at_quiet_points``
makes it (chunking.py), and the chunk is handed on. For a file already at the model's rate the
chunks are identical to cutting the whole decoded file.

One difference from decoding the whole file first: float files whose samples exceed ±1 are
scaled per chunk, not by the whole file's peak.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .audio import read_file, truncated_data_chunk
from .chunking import Chunk, padded_chunk, quiet_cut
from .errors import AudioError

BLOCK_SECONDS = 10.0


def duration_of(path: str | os.PathLike) -> float:
    """Seconds of audio in a file, from its header, which is checked as ``read_file`` checks it."""
    p = Path(path)
    try:
        info = sf.info(str(p))
    except (sf.LibsndfileError, RuntimeError, TypeError):
        read_file(p)  # raises the usual, precise error (missing, empty, not audio)
        raise
    short = truncated_data_chunk(info.extra_info)
    if short:
        raise AudioError(
            p, f"truncated: the header announces {short[0]} bytes of audio, the file holds {short[1]}"
        )
    if not info.frames:
        raise AudioError(p, "contains no samples")
    return info.frames / info.samplerate


def stream_chunks(
    path: str | os.PathLike,
    sample_rate: int,
    max_seconds: float,
    search_seconds: float = 5.0,
    window_ms: float = 100.0,
) -> Iterator[Chunk]:
    source = Path(path)
    max_len = int(max_seconds * sample_rate)
    expand = int(search_seconds * sample_rate)
    win = max(4, int(window_ms / 1000.0 * sample_rate))
    buffer = np.zeros(0, dtype=np.float32)
    offset = 0  # samples of the recording before buffer[0]
    emitted = 0
    try:
        with sf.SoundFile(str(source)) as f:
            resampler = None
            if f.samplerate != sample_rate:
                resampler = soxr.ResampleStream(f.samplerate, sample_rate, 1, dtype="float32", quality="HQ")
            block = max(1, int(BLOCK_SECONDS * f.samplerate))
            while True:
                data = f.read(block, dtype="float32", always_2d=True)
                last = data.shape[0] < block
                mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
                if resampler is not None:
                    mono = resampler.resample_chunk(mono, last=last)
                if not np.isfinite(mono).all():
                    raise AudioError(source, "contains NaN or infinite samples")
                buffer = np.concatenate([buffer, mono])
                # Cut while the search window after the nominal cut is complete.
                while buffer.shape[0] > max_len + expand:
                    cut = quiet_cut(buffer, 0, max_len, expand, win)
                    yield _scaled(padded_chunk(buffer[:cut], offset, sample_rate))
                    emitted += 1
                    buffer, offset = buffer[cut:], offset + cut
                if last:
                    break
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(source, f"not a readable audio file ({e})") from None
    # The tail: what split_at_quiet_points does with the rest.
    start = 0
    while buffer.shape[0] - start > max_len:
        cut = quiet_cut(buffer, start, max_len, expand, win)
        yield _scaled(padded_chunk(buffer[start:cut], offset + start, sample_rate))
        emitted += 1
        start = cut
    rest = buffer[start:]
    if rest.size == 0 and emitted == 0:
        raise AudioError(source, "contains no samples")
    if rest.size:
        if emitted:
            yield _scaled(padded_chunk(rest, offset + start, sample_rate))
        else:
            yield _scaled(Chunk(rest, 0.0, rest.shape[0] / sample_rate))


def _scaled(chunk: Chunk) -> Chunk:
    peak = float(np.max(np.abs(chunk.wav))) if chunk.wav.size else 0.0
    if peak <= 1.0:
        return chunk
    return Chunk(np.clip(chunk.wav / peak, -1.0, 1.0), chunk.offset, chunk.duration)
