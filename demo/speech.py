"""Synthetic speech for the demo model: Debian's TTS engines, augmented with sox, at 16 kHz.

Voices are split once: the held-out test set is spoken only by voices (engine, accent and
variant) that training never hears, and uses sentences that training never sees. Each clip gets
its own rate, pitch, tempo, gain, a little reverb sometimes, and background noise at a random
SNR; everything is drawn from a seeded generator per clip, so a rebuild gives the same data.

Engines: ``espeak-ng`` (English accents and German, with its voice variants), ``flite`` (four
English voices) and ``festival`` (one English voice). ``sox`` does resampling and augmentation.
"""

from __future__ import annotations

import io
import random
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000
# Part of the data cache's fingerprint: bump it when rendering changes (voices, augmentation), so
# a cached data set made the old way is not reused.
RENDER_VERSION = 3
TOOLS = ("espeak-ng", "flite", "text2wave", "sox")


@dataclass(frozen=True)
class Voice:
    engine: str  # "espeak", "flite" or "festival"
    name: str  # espeak "en-us+f2", flite "slt", festival "kal_diphone"

    def __str__(self) -> str:
        return f"{self.engine}:{self.name}"


_TRAIN_VARIANTS = ["m1", "m2", "m3", "m4", "m6", "f1", "f2", "f4", "klatt", "klatt3", "Andy", "anika",
                          "edward", "john", "linda", "max"]  # fmt: skip
_TEST_VARIANTS = ["m7", "f3", "f5", "klatt2", "Annie", "paul"]


def _espeak(accents: list[str], variants: list[str]) -> list[Voice]:
    return [Voice("espeak", f"{a}+{v}") for a in accents for v in variants]


# English: training hears three flite voices, festival and five espeak accents; the test set
# hears flite's "slt" and two other espeak accents, with variants training never hears. A clip
# picks an engine by weight first, then a voice of it, so the few flite voices are not drowned
# by espeak's many variants.
VoiceGroups = list[tuple[float, list[Voice]]]
VOICES: dict[str, dict[str, VoiceGroups]] = {
    "English": {
        "train": [
            (0.3, [Voice("flite", v) for v in ("kal16", "awb", "rms")]),
            (0.1, [Voice("festival", "kal_diphone")]),
            (0.6, _espeak(["en-us", "en-gb", "en-gb-x-rp", "en-029", "en-gb-x-gbclan"], _TRAIN_VARIANTS)),
        ],
        "test": [
            (0.3, [Voice("flite", "slt")]),
            (0.7, _espeak(["en-gb-scotland", "en-gb-x-gbcwmd"], _TEST_VARIANTS)),
        ],
    },
    "German": {
        "train": [(1.0, _espeak(["de"], _TRAIN_VARIANTS))],
        "test": [(1.0, _espeak(["de"], _TEST_VARIANTS))],
    },
}


def pick_voice(groups: VoiceGroups, rng: random.Random) -> Voice:
    weights, voices = zip(*groups, strict=True)
    return rng.choice(rng.choices(voices, weights=weights)[0])


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def synthesize(text: str, voice: Voice, rng: random.Random) -> bytes:
    """WAV bytes of ``text`` spoken by ``voice`` at a random rate and pitch."""
    if voice.engine == "espeak":
        rate, pitch = rng.randint(130, 200), rng.randint(25, 75)
        cmd = ["espeak-ng", "-v", voice.name, "-s", str(rate), "-p", str(pitch), "--stdout", text]
        return subprocess.run(cmd, check=True, capture_output=True).stdout
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        if voice.engine == "flite":
            stretch = f"duration_stretch={rng.uniform(0.85, 1.2):.2f}"
            cmd = ["flite", "-voice", voice.name, "--setf", stretch, "-t", text, "-o", str(out)]
            subprocess.run(cmd, check=True, capture_output=True)
        elif voice.engine == "festival":
            cmd = ["text2wave", "-eval", f"(voice_{voice.name})", "-o", str(out)]
            subprocess.run(cmd, input=text.encode(), check=True, capture_output=True)
        else:
            raise ValueError(f"unknown TTS engine {voice.engine!r}")
        return out.read_bytes()


def augment(wav: bytes, rng: random.Random) -> np.ndarray:
    """sox: 16 kHz mono, tempo, pitch, a little reverb sometimes, silence around, a random level;
    then noise at a random SNR. Returns float32 samples in [-1, 1]."""
    effects = ["rate", str(SAMPLE_RATE)]
    effects += ["tempo", f"{rng.uniform(0.88, 1.12):.3f}"]
    if rng.random() < 0.5:  # up to half an octave higher: training's flite voices are all male
        effects += ["pitch", str(rng.randint(-300, 600))]
    if rng.random() < 0.3:
        effects += ["reverb", str(rng.randint(10, 50)), "50", str(rng.randint(20, 80))]
    effects += ["pad", f"{rng.uniform(0.05, 0.5):.2f}", f"{rng.uniform(0.05, 0.5):.2f}"]
    effects += ["gain", "-n", f"{-rng.uniform(1.0, 20.0):.1f}"]  # peak at -1 .. -20 dBFS
    # -R: repeatable, sox seeds its dither noise with a constant instead of the clock.
    cmd = ["sox", "-R", "-V1", "-t", "wav", "-", "-t", "wav", "-b", "16", "-c", "1", "-", *effects]
    out = subprocess.run(cmd, input=wav, check=True, capture_output=True).stdout
    audio, sr = sf.read(io.BytesIO(out), dtype="float32")
    assert sr == SAMPLE_RATE
    if rng.random() < 0.8:  # white or brown-ish noise at 10..40 dB SNR
        nrng = np.random.default_rng(rng.getrandbits(32))
        noise = nrng.standard_normal(audio.shape[0]).astype(np.float32)
        if rng.random() < 0.5:
            noise = np.cumsum(noise) * 0.05
            noise -= np.convolve(noise, np.ones(400) / 400, mode="same")  # no DC drift
        snr_db = rng.uniform(10.0, 40.0)
        signal = float(np.mean(audio**2)) + 1e-12
        noise *= np.sqrt(signal / (float(np.mean(noise**2)) + 1e-12) / 10 ** (snr_db / 10))
        audio = audio + noise
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


def render(text: str, voice: Voice, seed: str) -> np.ndarray:
    """One clip: ``text`` by ``voice``, augmented; reproducible from ``seed``."""
    rng = random.Random(seed)
    return augment(synthesize(text, voice, rng), rng)
