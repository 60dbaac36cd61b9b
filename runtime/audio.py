"""Any audio input -> float32 mono at the model's sample rate, in [-1, 1].

Files are read with soundfile (WAV, FLAC, OGG/Vorbis/Opus, MP3, ...), channels are averaged,
other rates are resampled with soxr's high-quality mode (what librosa, and so the official
package, uses), and a signal that exceeds full scale is divided by its peak, as the official
package does. Integer arrays passed directly are scaled by their type's full scale.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .errors import AudioError, AudioFileNotFoundError

AudioInput = str | os.PathLike | np.ndarray | tuple[np.ndarray, int]


AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".caf", ".w64"}


def audio_files(paths: list[Path]) -> list[Path]:
    """Paths as given, with each folder replaced by the audio files in it (sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.suffix.lower() in AUDIO_SUFFIXES)
        else:
            out.append(p)
    return out


def describe(audio: AudioInput) -> str:
    """A name for error messages and results: the path, or a description of the array."""
    if isinstance(audio, (str, os.PathLike)):
        return str(audio)
    arr = audio[0] if isinstance(audio, tuple) else audio
    return f"<array {getattr(arr, 'shape', '?')}>"


def read_file(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    p = Path(path)
    if not p.exists():
        raise AudioFileNotFoundError(p)
    if p.is_dir():
        raise AudioError(p, "is a folder, not an audio file")
    if p.stat().st_size == 0:
        raise AudioError(p, "file is empty")
    try:
        short = truncated_data_chunk(sf.info(str(p)).extra_info)
        if short:
            raise AudioError(
                p, f"truncated: the header announces {short[0]} bytes of audio, the file holds {short[1]}"
            )
        data, rate = sf.read(str(p), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        detail = str(e).split(":", 1)[-1].strip() or type(e).__name__
        raise AudioError(p, f"not a readable audio file ({detail})") from None
    return data, int(rate)


def truncated_data_chunk(info: str) -> tuple[int, int] | None:
    """libsndfile reads a cut-off WAV/AIFF silently but logs ``data : 32000 (should be 15978)``."""
    match = re.search(r"^(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", info, re.MULTILINE)
    if match and int(match.group(2)) < int(match.group(1)):
        return int(match.group(1)), int(match.group(2))
    return None


def to_mono(data: np.ndarray, source: str) -> np.ndarray:
    if data.ndim == 1:
        return data
    if data.ndim != 2:
        raise AudioError(source, f"expected 1 or 2 dimensions, got shape {data.shape}")
    # (channels, samples) when the first axis is small and the second is not, else (samples, channels)
    if data.shape[0] <= 8 and data.shape[1] > data.shape[0]:
        data = data.T
    return data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]


def load_audio(audio: AudioInput, sample_rate: int = 16000) -> np.ndarray:
    """Decode, mix down, resample and range-normalise one input.

    ``audio`` is a path, an array at ``sample_rate``, or ``(array, rate)``.
    """
    source = describe(audio)
    if isinstance(audio, (str, os.PathLike)):
        data, rate = read_file(audio)
    elif isinstance(audio, tuple) and len(audio) == 2:
        data, rate = np.asarray(audio[0]), int(audio[1])
    elif isinstance(audio, np.ndarray):
        data, rate = audio, sample_rate
    else:
        raise AudioError(source, f"unsupported audio input of type {type(audio).__name__}")
    if rate <= 0:
        raise AudioError(source, f"invalid sample rate {rate}")

    if np.issubdtype(data.dtype, np.integer):
        data = data.astype(np.float32) / float(-np.iinfo(data.dtype).min)
    elif not np.issubdtype(data.dtype, np.floating):
        raise AudioError(source, f"samples of type {data.dtype} are not audio")
    wav = np.ascontiguousarray(to_mono(np.asarray(data, dtype=np.float32), source))
    if wav.size == 0:
        raise AudioError(source, "contains no samples")
    if not np.isfinite(wav).all():
        raise AudioError(source, "contains NaN or infinite samples")
    if rate != sample_rate:
        wav = soxr.resample(wav, rate, sample_rate, quality="HQ").astype(np.float32, copy=False)
    peak = float(np.max(np.abs(wav)))
    if peak > 1.0:
        wav = wav / peak
    return np.clip(wav, -1.0, 1.0)
