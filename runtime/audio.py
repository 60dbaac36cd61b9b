"""Any audio input -> float32 mono at the model's sample rate, in [-1, 1]: whole, or a block at a
time for long files.

Files are read with soundfile (WAV, FLAC, OGG/Vorbis/Opus, MP3, ...), channels are averaged,
other rates are resampled with soxr's high-quality mode (what librosa, and so the official
package, uses), and a signal that exceeds full scale is divided by its peak, as the official
package does. Integer arrays passed directly are scaled by their type's full scale. A bare
numpy array is taken to be at the model's rate (16 kHz); pass ``(array, sample_rate)`` otherwise.

Long files are read by ``read_blocks``: decoded, mixed down and resampled (soxr's streaming
resampler) ``BLOCK_SECONDS`` at a time, so memory does not grow with the file's length; there
the peak is only known per chunk, so ``peak_normalized`` is applied per chunk.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .errors import AudioError, AudioFileNotFoundError

AudioInput = str | os.PathLike | np.ndarray | tuple[np.ndarray, int]

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".caf", ".w64"}
BLOCK_SECONDS = 10.0


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
    arr = audio[0] if isinstance(audio, tuple) and audio else audio
    if not hasattr(arr, "shape"):
        return f"<{type(audio).__name__}>"
    return f"<array {arr.shape}>"


def _info(path: str | os.PathLike) -> sf._SoundFileInfo:
    """A file's header, checked: missing, a folder, empty, not audio, or truncated raise AudioError."""
    p = Path(path)
    if not p.exists():
        raise AudioFileNotFoundError(p)
    if p.is_dir():
        raise AudioError(p, "is a folder, not an audio file")
    if p.stat().st_size == 0:
        raise AudioError(p, "file is empty")
    try:
        info = sf.info(str(p))
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise AudioError(p, f"not a readable audio file ({_detail(e)})") from None
    # libsndfile reads a cut-off WAV/AIFF silently but logs ``data : 32000 (should be 15978)``.
    match = re.search(r"^(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", info.extra_info, re.MULTILINE)
    if match and int(match.group(2)) < int(match.group(1)):
        raise AudioError(
            p,
            f"truncated: the header announces {match.group(1)} bytes of audio, "
            f"the file holds {match.group(2)}",
        )
    if not info.frames:
        raise AudioError(p, "contains no samples")
    return info


def _detail(e: Exception) -> str:
    return str(e).split(":", 1)[-1].strip() or type(e).__name__


def duration(path: str | os.PathLike) -> float:
    """Seconds of audio in a file, from its (checked) header.

    Raises:
        AudioError: missing, a folder, empty, not audio, truncated, or no samples.
    """
    info = _info(path)
    return info.frames / info.samplerate


def read_file(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """(samples (N, channels) float32, sample rate) of a whole file. Raises AudioError."""
    _info(path)
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise AudioError(path, f"not a readable audio file ({_detail(e)})") from None
    return data, int(rate)


def to_mono(data: np.ndarray, source: str) -> np.ndarray:
    """(N,), (N, C) or (C, N) with C <= 8 -> (N,) float32, channels averaged."""
    if data.ndim == 1:
        return data
    if data.ndim != 2:
        raise AudioError(source, f"expected 1 or 2 dimensions, got shape {data.shape}")
    # (channels, samples) when the first axis is small and the second is not, else (samples, channels)
    if data.shape[0] <= 8 and data.shape[1] > data.shape[0]:
        data = data.T
    return mix_down(data)


def mix_down(frames: np.ndarray) -> np.ndarray:
    """(N, channels) -> (N,) float32, the channels averaged."""
    return frames.mean(axis=1, dtype=np.float32) if frames.shape[1] > 1 else frames[:, 0]


def check_finite(wav: np.ndarray, source: str | os.PathLike) -> np.ndarray:
    if not np.isfinite(wav).all():
        raise AudioError(source, "contains NaN or infinite samples")
    return wav


def peak_normalized(wav: np.ndarray) -> np.ndarray:
    """Divided by its peak when that exceeds full scale (as the official package), clipped to [-1, 1]."""
    peak = float(np.max(np.abs(wav))) if wav.size else 0.0
    if peak <= 1.0:
        return wav
    return np.clip(wav / peak, -1.0, 1.0)


def load_audio(audio: AudioInput, sample_rate: int = 16000) -> np.ndarray:
    """Decode, mix down, resample and range-normalise one input.

    Args:
        audio: A path, an array at ``sample_rate`` ((N,), (N, C) or (C, N); float or int), or
            ``(array, rate)``.
        sample_rate: The rate to return, in Hz.

    Returns:
        (N,) float32 samples in [-1, 1] at ``sample_rate``.

    Raises:
        AudioError: the file cannot be read, or the samples are empty, NaN or not audio.
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
    check_finite(wav, source)
    if rate != sample_rate:
        wav = soxr.resample(wav, rate, sample_rate, quality="HQ").astype(np.float32, copy=False)
    return peak_normalized(wav)


def read_blocks(path: str | os.PathLike, sample_rate: int, checked: bool = False) -> Iterator[np.ndarray]:
    """A file as consecutive (n,) float32 mono blocks at ``sample_rate``, ``BLOCK_SECONDS`` each,
    not peak-normalised (see ``peak_normalized``).

    Args:
        checked: the caller has already checked the header (``duration``): skip reading it again.

    Raises:
        AudioError: as ``duration`` for the header; while reading, for NaN samples or a stream
            that cannot be decoded.
    """
    source = Path(path)
    if not checked:
        _info(source)
    try:
        with sf.SoundFile(str(source)) as f:
            resampler = None
            if f.samplerate != sample_rate:
                resampler = soxr.ResampleStream(f.samplerate, sample_rate, 1, dtype="float32", quality="HQ")
            block = max(1, int(BLOCK_SECONDS * f.samplerate))
            while True:
                data = f.read(block, dtype="float32", always_2d=True)
                last = data.shape[0] < block
                mono = mix_down(data)
                if resampler is not None:
                    mono = resampler.resample_chunk(mono, last=last)
                yield check_finite(mono, source)
                if last:
                    break
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(source, f"not a readable audio file ({e})") from None
