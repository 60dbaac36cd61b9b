"""The demo model's data set: which sentence each voice says, rendered once and cached.

Sentences are split before any voice is chosen, so held-out clips have both sentences and voices
that training never met (demo_speech.VOICES). The training set is kept as log-mel features (what
the model sees; float16 to halve the memory), the held-out set as 16 kHz WAV files with a
``test.jsonl`` index, because it is scored through the runtime from audio, as a user would.

    work/
      train-<fingerprint>.npz   features, lengths, transcripts, languages
      test-<fingerprint>/       0000.wav ... + test.jsonl {"audio", "language", "text", "voice"}
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import shutil
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from qwen_asr_edge.runtime.bundle import MelSpec
from qwen_asr_edge.runtime.mel import LogMel
from qwen_asr_edge.runtime.providers import usable_cpus

from .speech import RENDER_VERSION, SAMPLE_RATE, VOICES, Voice, missing_tools, pick_voice, render
from .text import sentences

LANGUAGES = ("English", "German")


@dataclass(frozen=True)
class Clip:
    language: str
    text: str  # the transcript (written form)
    spoken: str  # what the TTS engine reads
    voice: str  # engine:name
    seed: str  # everything random about the clip's rendering follows from this


@dataclass
class TrainSet:
    features: list[np.ndarray]  # (n_mels, frames) float16 each
    texts: list[str]
    languages: list[str]


def plan(train_per_language: int, test_per_language: int, seed: int) -> tuple[list[Clip], list[Clip]]:
    """The clips of both sets: disjoint sentences, disjoint voices, one clip per sentence."""
    train: list[Clip] = []
    test: list[Clip] = []
    for lang in LANGUAGES:
        pool = sentences(lang, train_per_language + test_per_language, seed)
        rng = random.Random(f"{seed}-{lang}-split")
        rng.shuffle(pool)
        held_out, seen = pool[:test_per_language], pool[test_per_language:]
        for split, items, out in (("test", held_out, test), ("train", seen, train)):
            for i, (written, spoken) in enumerate(items):
                voice = pick_voice(VOICES[lang][split], rng)
                out.append(Clip(lang, written, spoken, str(voice), f"{seed}-{lang}-{split}-{i}"))
    return train, test


def _voice(name: str) -> Voice:
    engine, _, voice = name.partition(":")
    return Voice(engine, voice)


def _audio(clip: Clip) -> np.ndarray:
    return render(clip.spoken, _voice(clip.voice), clip.seed)


@functools.cache
def _mel() -> LogMel:
    return LogMel(MelSpec())


def _features(clip: Clip) -> np.ndarray:
    return _mel()(_audio(clip)).astype(np.float16)


def _fingerprint(clips: Iterable[Clip]) -> str:
    h = hashlib.sha256(f"render-{RENDER_VERSION}".encode())
    for clip in clips:
        h.update(json.dumps(asdict(clip), ensure_ascii=False).encode())
    return h.hexdigest()[:12]


def _check_tools() -> None:
    missing = missing_tools()
    if missing:
        raise RuntimeError(
            f"the demo data needs {', '.join(missing)}: apt-get install espeak-ng flite festival "
            "festvox-kallpc16k sox (scripts/setup.sh does it)"
        )


def train_set(clips: list[Clip], work: Path, log=print) -> TrainSet:
    path = work / f"train-{_fingerprint(clips)}.npz"
    if not path.is_file():
        _check_tools()
        log(f"synthesizing {len(clips)} training clips into {path}")
        with ProcessPoolExecutor(usable_cpus()) as pool:
            feats = list(pool.map(_features, clips, chunksize=16))
        lengths = np.array([f.shape[1] for f in feats])
        tmp = path.with_suffix(".tmp.npz")
        np.savez(
            tmp,
            features=np.concatenate(feats, axis=1),
            lengths=lengths,
            texts=np.array([c.text for c in clips]),
            languages=np.array([c.language for c in clips]),
        )
        tmp.replace(path)
    data = np.load(path)
    ends = np.cumsum(data["lengths"])
    feats = np.split(data["features"], ends[:-1], axis=1)
    return TrainSet(feats, [str(t) for t in data["texts"]], [str(x) for x in data["languages"]])


def test_set(clips: list[Clip], work: Path, log=print) -> Path:
    """The held-out clips as WAV files; returns the folder holding them and test.jsonl."""
    folder = work / f"test-{_fingerprint(clips)}"
    if not (folder / "test.jsonl").is_file():
        _check_tools()
        log(f"synthesizing {len(clips)} held-out clips into {folder}")
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        with ProcessPoolExecutor(usable_cpus()) as pool:
            audios = list(pool.map(_audio, clips, chunksize=8))
        lines = []
        for i, (clip, audio) in enumerate(zip(clips, audios, strict=True)):
            name = f"{i:04d}.wav"
            sf.write(tmp / name, audio, SAMPLE_RATE, subtype="PCM_16")
            record = {"audio": name, "language": clip.language, "text": clip.text, "voice": clip.voice}
            lines.append(json.dumps(record, ensure_ascii=False))
        (tmp / "test.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    return folder


def read_test_set(folder: Path) -> list[dict]:
    """Records of test.jsonl with ``audio`` as a full path."""
    records = []
    for line in (folder / "test.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        record["audio"] = str(folder / record["audio"])
        records.append(record)
    return records
