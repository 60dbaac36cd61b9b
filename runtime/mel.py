"""Whisper-style log-mel features in numpy, matching the official extractor.

The official package runs transformers' WhisperFeatureExtractor through torch: a centred STFT
with reflect padding and a periodic Hann window, |X|² with the last frame dropped (so a clip of
N samples gives N // hop frames), a Slaney mel filterbank, log10 clamped at 1e-10, a floor at
(clip maximum - 8) and finally (x + 4) / 4. Features are computed per clip: extracting a padded
batch, as the official batch path does, changes the last frame of shorter clips.
"""

from __future__ import annotations

import numpy as np

from .bundle import MelSpec

_BLOCK_FRAMES = 4096  # bounds the temporary frame matrix for long clips
# The filterbank product runs on fixed tiles of frames, the last one zero-padded: BLAS kernels
# round a row differently by where it falls in the matrix's row tiling (OpenBLAS on AVX2 without
# AVX-512 does: a frame's mel moved by 1 ulp as the clip grew), and a growing live clip's earlier
# frames must come out bit for bit the same (runtime/encoder_windows.py reuses their encoding).
_ROW_TILE = 64


def _hz_to_mel(freq: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    freq = np.asarray(freq, dtype=np.float64)
    mels = 3.0 * freq / 200.0
    log_region = freq >= 1000.0
    mels[log_region] = 15.0 + np.log(freq[log_region] / 1000.0) * (27.0 / np.log(6.4))
    return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    mels = np.asarray(mels, dtype=np.float64)
    freq = 200.0 * mels / 3.0
    log_region = mels >= 15.0
    freq[log_region] = 1000.0 * np.exp(np.log(6.4) / 27.0 * (mels[log_region] - 15.0))
    return freq


def mel_filterbank(spec: MelSpec) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels) triangular filters with Slaney area normalisation."""
    n_bins = spec.n_fft // 2 + 1
    fft_freqs = np.linspace(0, spec.sample_rate // 2, n_bins)
    mel_points = np.linspace(
        _hz_to_mel(np.array([spec.f_min]))[0], _hz_to_mel(np.array([spec.f_max]))[0], spec.n_mels + 2
    )
    filter_freqs = _mel_to_hz(mel_points)
    widths = np.diff(filter_freqs)
    slopes = filter_freqs[None, :] - fft_freqs[:, None]
    down = -slopes[:, :-2] / widths[:-1]
    up = slopes[:, 2:] / widths[1:]
    filters = np.maximum(0.0, np.minimum(down, up))
    filters *= 2.0 / (filter_freqs[2 : spec.n_mels + 2] - filter_freqs[: spec.n_mels])
    return filters


class LogMel:
    """Callable feature extractor; filters and window are built once and never mutated."""

    def __init__(self, spec: MelSpec):
        self.spec = spec
        self.filters = mel_filterbank(spec).astype(np.float32)  # (bins, mels)
        n = np.arange(spec.n_fft)
        self.window = (0.5 - 0.5 * np.cos(2.0 * np.pi * n / spec.n_fft)).astype(np.float32)

    def num_frames(self, num_samples: int) -> int:
        return num_samples // self.spec.hop_length

    def min_samples(self) -> int:
        """Shortest clip that yields a frame (reflect padding needs more samples than n_fft // 2)."""
        return max(self.spec.hop_length, self.spec.n_fft // 2 + 1)

    def __call__(self, wav: np.ndarray) -> np.ndarray:
        """(samples,) float32 -> (n_mels, samples // hop) float32."""
        spec = self.spec
        if wav.shape[0] < self.min_samples():
            raise ValueError(f"{wav.shape[0]} samples are too few for one {spec.hop_length}-sample frame")
        half = spec.n_fft // 2
        padded = np.pad(wav.astype(np.float32, copy=False), (half, half), mode="reflect")
        frames = np.lib.stride_tricks.sliding_window_view(padded, spec.n_fft)[:: spec.hop_length]
        n_frames = self.num_frames(wav.shape[0])  # the STFT's last frame is dropped
        mel = np.empty((n_frames, spec.n_mels), dtype=np.float32)
        for start in range(0, n_frames, _BLOCK_FRAMES):
            block = frames[start : min(start + _BLOCK_FRAMES, n_frames)] * self.window
            spectrum = np.fft.rfft(block, axis=-1)
            power = spectrum.real**2 + spectrum.imag**2
            rows = block.shape[0]
            tiles = np.zeros((-(-rows // _ROW_TILE) * _ROW_TILE, power.shape[1]), np.float32)
            tiles[:rows] = power
            product = tiles.reshape(-1, _ROW_TILE, power.shape[1]) @ self.filters
            mel[start : start + rows] = product.reshape(-1, spec.n_mels)[:rows]
        log_mel = np.log10(np.maximum(mel, 1e-10))
        log_mel = np.maximum(log_mel, log_mel.max() - spec.log_floor_db)
        return np.ascontiguousarray(((log_mel + 4.0) / 4.0).T)


def batch_features(
    extractor: LogMel, wavs: list[np.ndarray], pad_to: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Per-clip features, zero-padded into (B, n_mels, frames) with frames a multiple of ``pad_to``."""
    feats = [extractor(w) for w in wavs]
    lens = np.array([f.shape[1] for f in feats], dtype=np.int64)
    frames = int(-(-lens.max() // pad_to) * pad_to)
    out = np.zeros((len(feats), extractor.spec.n_mels, frames), dtype=np.float32)
    for i, f in enumerate(feats):
        out[i, :, : f.shape[1]] = f
    return out, lens
