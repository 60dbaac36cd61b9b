"""Non-speech clips for the demo model: what a microphone hears when nobody talks.

A model that never heard silence writes a sentence for it. These clips teach it the official
no-speech answer, ``language None<asr_text>`` and nothing after it (spec §5.2), which the runtime
returns as empty text. Kinds: digital and near silence, white, pink and brown noise, room tone
(low rumble with a few knocks), mains hum (50 or 60 Hz with harmonics), beeps, and music-like
tones (notes of a scale with harmonics and an envelope, sometimes chords), alone or over noise.
Generated with numpy, reproducible from a seed; float32 at 16 kHz.
"""

from __future__ import annotations

import random

import numpy as np

from .speech import SAMPLE_RATE

KINDS = ("silence", "noise", "room", "hum", "beeps", "music")


def _coloured_noise(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Noise with power falling as f**-exponent (0 white, 1 pink, 2 brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    f[0] = f[1] if n > 2 else 1.0
    noise = np.fft.irfft(spectrum / f ** (exponent / 2), n)
    return noise / (np.std(noise) + 1e-12)


def _note(freq: float, samples: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(samples) / SAMPLE_RATE
    harmonics = rng.uniform(0.0, 0.6, size=4) ** np.arange(1, 5)
    tone = sum(a * np.sin(2 * np.pi * freq * (k + 1) * t) for k, a in enumerate([1.0, *harmonics[:3]]))
    attack = min(len(t), int(0.02 * SAMPLE_RATE))
    envelope = np.exp(-t * rng.uniform(0.5, 4.0))
    envelope[:attack] *= np.linspace(0, 1, attack)
    return tone * envelope


def _music(n: int, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(n)
    base = rng.uniform(110, 440)
    scale = [0, 2, 4, 5, 7, 9, 11, 12]
    beat = rng.uniform(0.15, 0.6)
    pos = 0
    while pos < n:
        length = int(beat * SAMPLE_RATE * rng.choice([1, 1, 2, 4]))
        steps = rng.choice(scale, size=rng.choice([1, 1, 3]))  # a note or a chord
        for step in steps:
            note = _note(base * 2 ** (step / 12), length, rng)
            out[pos : pos + length] += note[: n - pos]
        pos += length
    return out


def render_non_speech(kind: str, seconds: float, seed: str) -> np.ndarray:
    """A ``kind`` clip (one of KINDS) of ``seconds``, reproducible from ``seed``; float32 at 16 kHz,
    peak between -50 and -3 dBFS (silence: -75 to -45 dBFS, or all zeros)."""
    py = random.Random(seed)
    rng = np.random.default_rng(py.getrandbits(32))
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    if kind == "silence":
        if py.random() < 0.3:
            return np.zeros(n, np.float32)
        audio = _coloured_noise(n, rng, py.choice([0.0, 1.0]))
    elif kind == "noise":
        audio = _coloured_noise(n, rng, py.choice([0.0, 1.0, 2.0]))
    elif kind == "room":
        audio = _coloured_noise(n, rng, 2.0) + 0.3 * _coloured_noise(n, rng, 1.0)
        for _ in range(py.randint(0, 3)):  # knocks: short decaying bursts
            at, length = py.randrange(max(1, n - 800)), 800
            burst = rng.standard_normal(length) * np.exp(-np.arange(length) / 120) * py.uniform(2, 6)
            audio[at : at + length] += burst[: n - at]
    elif kind == "hum":
        mains = py.choice([50.0, 60.0])
        phases = [py.uniform(0, 6) for _ in range(7)]
        audio = sum(
            py.uniform(0.1, 1.0) / k * np.sin(2 * np.pi * mains * k * t + phases[k - 1]) for k in range(1, 8)
        )
        audio = audio + 0.05 * _coloured_noise(n, rng, 1.0)
    elif kind == "beeps":
        audio = np.zeros(n)
        freq, on, off = py.uniform(400, 3000), py.uniform(0.05, 0.5), py.uniform(0.1, 1.0)
        period = int((on + off) * SAMPLE_RATE)
        gate = (np.arange(n) % period) < on * SAMPLE_RATE
        audio = np.sin(2 * np.pi * freq * t) * gate
    elif kind == "music":
        audio = _music(n, rng)
    else:
        raise ValueError(f"unknown non-speech kind {kind!r}")
    audio = np.asarray(audio, np.float64)
    if kind != "noise" and py.random() < 0.4:  # over a little noise, as recordings are
        audio = audio / (np.max(np.abs(audio)) + 1e-12) + _coloured_noise(n, rng, 1.0) * py.uniform(0.01, 0.1)
    peak = 10 ** (-py.uniform(45.0, 75.0) / 20) if kind == "silence" else 10 ** (-py.uniform(3.0, 50.0) / 20)
    audio = audio / (np.max(np.abs(audio)) + 1e-12) * peak
    return audio.astype(np.float32)
