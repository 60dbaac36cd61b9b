"""Synthetic speech for the demo model: Debian's TTS engines, augmented with sox, at 16 kHz.

Voices are split once: the held-out test set is spoken only by voices (engine, accent and
variant) that training never hears, and uses sentences that training never sees. Each clip gets
its own rate, pitch, tempo, gain, a little reverb sometimes, and background noise at a random
SNR; everything is drawn from a seeded generator per clip, so a rebuild gives the same data.

Engines: ``espeak-ng`` (English accents and German, with its voice variants), ``flite`` (five
English voices) and ``festival`` (three English voices). ``sox`` does resampling and augmentation.
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
RENDER_VERSION = 4
TOOLS = ("espeak-ng", "flite", "text2wave", "sox")


@dataclass(frozen=True)
class Voice:
    engine: str  # "espeak", "flite" or "festival"
    name: str  # espeak "en-us+f2", flite "slt", festival "kal_diphone"

    def __str__(self) -> str:
        return f"{self.engine}:{self.name}"


def _names(words: str) -> list[str]:
    return words.split()


# espeak-ng's voice variants (espeak-ng-data/voices/!v), named here so that the split does not
# change with the installed version. The test variants are never heard in training; the effect
# variants (robots, "Demonic", "croak") are left out of both.
_TEST_VARIANTS = _names("m7 f3 f5 klatt2 Annie paul Alicia benjamin grandma m8 shelby steph2")
_TRAIN_VARIANTS = [
    *_names("m1 m2 m3 m4 m5 m6 f1 f2 f4 klatt klatt3 klatt4 klatt5 klatt6 Andy anika edward edward2 john"),
    *_names("linda max Alex Andrea AnxiousAndy Denis Diogo Gene Gene2 Henrique Hugo Jacky Lee Marco Mario"),
    *_names("Michael Mike Nguyen RicishayMax RicishayMax2 RicishayMax3 Storm adam announcer antonio aunty"),
    *_names("belinda boris caleb david ed fast grandpa gustave iven iven2 iven3 iven4 kaukovalta marcelo"),
    *_names("michel miguel norbert pablo pedro quincy rob robert robosoft sandro steph steph3 travis victor"),
    *_names("whisper whisperf zac"),
    "Mr serious",
]


def _espeak(accents: list[str], variants: list[str]) -> list[Voice]:
    return [Voice("espeak", f"{a}+{v}") for a in accents for v in variants]


# English: training hears four flite voices, two festival diphone voices and six espeak accents;
# the test set hears the CMU Arctic "slt" speaker (flite's and festival's HTS voice; training has
# no natural female voice at all), two other espeak accents and variants training never hears.
# A clip picks an engine by weight first, then a voice of it, so the few flite and festival voices
# are not drowned by espeak's many variants.
VoiceGroups = list[tuple[float, list[Voice]]]
VOICES: dict[str, dict[str, VoiceGroups]] = {
    "English": {
        "train": [
            (0.25, [Voice("flite", v) for v in ("kal", "kal16", "awb", "rms")]),
            (0.15, [Voice("festival", v) for v in ("kal_diphone", "ked_diphone")]),
            (0.6, _espeak(_names("en-us en-gb en-gb-x-rp en-029 en-gb-x-gbclan en-us-nyc"), _TRAIN_VARIANTS)),
        ],
        "test": [
            (0.2, [Voice("flite", "slt")]),
            (0.15, [Voice("festival", "cmu_us_slt_arctic_hts")]),
            (0.65, _espeak(["en-gb-scotland", "en-gb-x-gbcwmd"], _TEST_VARIANTS)),
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


FESTIVAL_VOICES = {"kal_diphone": "english", "ked_diphone": "english", "cmu_us_slt_arctic_hts": "us"}


def missing_tools() -> list[str]:
    """The programs and festival voices (by name) that rendering needs and this machine lacks."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    folders = Path("/usr/share/festival/voices")
    return missing + [
        f"festival voice {v}" for v, lang in FESTIVAL_VOICES.items() if not (folders / lang / v).is_dir()
    ]


@dataclass(frozen=True)
class Style:
    """How a clip's voice speaks, drawn once per clip so that its sentences sound alike."""

    rate: int  # espeak words per minute
    pitch: int  # espeak 0..99
    stretch: float  # flite duration_stretch

    @classmethod
    def draw(cls, rng: random.Random) -> Style:
        return cls(rng.randint(130, 200), rng.randint(25, 75), round(rng.uniform(0.85, 1.2), 2))


def synthesize(text: str, voice: Voice, style: Style) -> tuple[np.ndarray, int]:
    """``text`` spoken by ``voice``: float32 samples at the engine's own rate, and that rate."""
    if voice.engine == "espeak":
        cmd = ["espeak-ng", "-v", voice.name, "-s", str(style.rate), "-p", str(style.pitch), "--stdout", text]
        wav = subprocess.run(cmd, check=True, capture_output=True).stdout
    else:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out.wav"
            if voice.engine == "flite":
                stretch = f"duration_stretch={style.stretch}"
                cmd = ["flite", "-voice", voice.name, "--setf", stretch, "-t", text, "-o", str(out)]
                subprocess.run(cmd, check=True, capture_output=True)
            elif voice.engine == "festival":
                cmd = ["text2wave", "-eval", f"(voice_{voice.name})", "-o", str(out)]
                subprocess.run(cmd, input=text.encode(), check=True, capture_output=True)
            else:
                raise ValueError(f"unknown TTS engine {voice.engine!r}")
            wav = out.read_bytes()
    audio, sr = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    return audio[:, 0], sr


def _pause(rng: random.Random, short: tuple[float, float], long: tuple[float, float], p_long: float) -> float:
    return rng.uniform(*(long if rng.random() < p_long else short))


def speak(sentences: list[str], voice: Voice, rng: random.Random) -> tuple[np.ndarray, int]:
    """The sentences one after another in one voice and style, with a pause of 0.3 to 1.5 s
    (sometimes up to 3 s) between them; samples at the engine's rate, and that rate."""
    style = Style.draw(rng)
    parts, rate = [], 0
    for i, text in enumerate(sentences):
        audio, rate = synthesize(text, voice, style)
        if i:
            parts.append(np.zeros(int(rate * _pause(rng, (0.3, 1.5), (1.5, 3.0), 0.2)), np.float32))
        parts.append(audio)
    return np.concatenate(parts), rate


def augment(audio: np.ndarray, rate: int, rng: random.Random) -> np.ndarray:
    """sox: 16 kHz mono, tempo, pitch, a little reverb sometimes, silence around (now and then
    seconds of it, as recordings start and end), a random level; then noise at a random SNR.
    Returns float32 samples in [-1, 1]."""
    effects = ["rate", str(SAMPLE_RATE)]
    effects += ["tempo", f"{rng.uniform(0.88, 1.12):.3f}"]
    if rng.random() < 0.5:  # up to half an octave higher: training's flite voices are all male
        effects += ["pitch", str(rng.randint(-300, 600))]
    if rng.random() < 0.3:
        effects += ["reverb", str(rng.randint(10, 50)), "50", str(rng.randint(20, 80))]
    lead, trail = (_pause(rng, (0.05, 0.5), (0.5, 3.0), 0.25) for _ in range(2))
    effects += ["pad", f"{lead:.2f}", f"{trail:.2f}"]
    effects += ["gain", "-n", f"{-rng.uniform(1.0, 20.0):.1f}"]  # peak at -1 .. -20 dBFS
    wav = io.BytesIO()
    sf.write(wav, audio, rate, format="WAV", subtype="FLOAT")
    # -R: repeatable, sox seeds its dither noise with a constant instead of the clock.
    cmd = ["sox", "-R", "-V1", "-t", "wav", "-", "-t", "wav", "-b", "16", "-c", "1", "-", *effects]
    out = subprocess.run(cmd, input=wav.getvalue(), check=True, capture_output=True).stdout
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


def render(sentences: list[str], voice: Voice, seed: str) -> np.ndarray:
    """One clip: the sentences spoken by ``voice``, augmented; reproducible from ``seed``."""
    rng = random.Random(seed)
    return augment(*speak(sentences, voice, rng), rng)
