"""The demo model's data set: what each clip says and who says it, rendered once and cached.

Four kinds of clip, each split before any voice is chosen, so held-out clips have both sentences
and voices that training never met (speech.VOICES):

- ``template``: one sentence of text.py's domain (numbers, times, dates, commands);
- ``open``: one sentence of common words in random order (vocabulary.py), which only hearing gets;
- ``multi``: several sentences of both, with pauses, up to 30 s (held out: 20 to 30 s), as the
  runtime's 30 s chunks of a long recording hold them;
- ``non-speech``: silence, noise, hum, tones (non_speech.py), whose answer is no text.

The training set is kept as log-mel features (what the model sees; float16 to halve the memory),
the held-out set as 16 kHz WAV files with a ``test.jsonl`` index, because it is scored through the
runtime from audio, as a user would.

    work/
      train-<fingerprint>.npz   features, lengths, transcripts, languages, kinds
      test-<fingerprint>/       0000.wav ... + test.jsonl {"audio", "kind", "language", "text", "voice"}
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
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

from .non_speech import KINDS as NON_SPEECH_KINDS
from .non_speech import render_non_speech
from .speech import RENDER_VERSION, SAMPLE_RATE, VOICES, Voice, missing_tools, pick_voice, render
from .text import sentences
from .vocabulary import missing_word_lists, open_sentences

LANGUAGES = ("English", "German")
KINDS = ("template", "open", "multi", "non-speech")
NO_SPEECH = "None"  # the official language of a clip without speech: "language None<asr_text>"
MAX_SECONDS = 30.0  # one of the runtime's chunks


@dataclass(frozen=True)
class Clip:
    kind: str  # one of KINDS
    language: str  # "English", "German", or NO_SPEECH
    spoken: tuple[str, ...]  # the sentences the TTS engine reads, in spoken form; () for non-speech
    written: tuple[str, ...]  # the same sentences as the transcript writes them
    voice: str  # engine:name, or "non-speech:<kind>"
    seed: str  # everything random about the clip's rendering follows from this
    seconds: float = 0.0  # non-speech only: its length

    @property
    def text(self) -> str:
        return " ".join(self.written)


@dataclass
class TrainSet:
    features: list[np.ndarray]  # (n_mels, frames) float16 each
    texts: list[str]
    languages: list[str]
    # What the TTS engine read, in words ("seven fifty" for "7:50"); what a CTC head can align.
    spoken: list[str] | None = None


@dataclass(frozen=True)
class Sizes:
    """Clips per language (non-speech: in all) of each kind."""

    template: int
    open: int
    multi: int
    non_speech: int


def _split(pool: list, n_test: int, rng: random.Random) -> tuple[list, list]:
    rng.shuffle(pool)
    return pool[:n_test], pool[n_test:]


def _multi(pools: list[list], n: int, seconds: tuple[float, float], rng: random.Random) -> list[list]:
    """``n`` lists of sentences taken from ``pools`` (alternately; each pool is gone through in a
    shuffled order before any sentence comes again), each long enough for about a target length
    drawn from ``seconds`` (0.07 s per character and a second per pause: espeak's pace)."""
    queues: list[list] = [[] for _ in pools]
    out = []
    for _ in range(n):
        target, chosen, estimate = rng.uniform(*seconds), [], 0.0
        while estimate < target:
            k = rng.randrange(len(pools))
            if not queues[k]:
                queues[k] = rng.sample(pools[k], len(pools[k]))
            pair = queues[k].pop()
            chosen.append(pair)
            estimate += 0.07 * len(pair[1]) + 1.0
        out.append(chosen)
    return out


def plan(train: Sizes, test: Sizes, seed: int) -> tuple[list[Clip], list[Clip]]:
    """The clips of both sets: disjoint sentences and disjoint voices."""
    out: dict[str, list[Clip]] = {"train": [], "test": []}
    for lang in LANGUAGES:
        rng = random.Random(f"{seed}-{lang}-split")
        n_test_multi_sentences = test.multi * 12
        template = sentences(lang, train.template + test.template + n_test_multi_sentences, seed)
        opened = open_sentences(lang, train.open + test.open + n_test_multi_sentences, seed)
        template_test, template_train = _split(template, test.template + n_test_multi_sentences, rng)
        open_test, open_train = _split(opened, test.open + n_test_multi_sentences, rng)
        singles = {
            "train": [("template", template_train), ("open", open_train)],
            "test": [("template", template_test[: test.template]), ("open", open_test[: test.open])],
        }
        multi = {
            "train": _multi([template_train, open_train], train.multi, (4.0, 26.0), rng),
            "test": _multi(
                [template_test[test.template :], open_test[test.open :]], test.multi, (20.0, 26.0), rng
            ),
        }
        for split in ("train", "test"):
            groups = VOICES[lang][split]
            items = [(kind, [pair]) for kind, pool in singles[split] for pair in pool] + [
                ("multi", pairs) for pairs in multi[split]
            ]
            for i, (kind, pairs) in enumerate(items):
                voice = pick_voice(groups, rng)
                written = tuple(w for w, _ in pairs)
                spoken = tuple(s for _, s in pairs)
                out[split].append(Clip(kind, lang, spoken, written, str(voice), f"{seed}-{lang}-{split}-{i}"))
    for split, n in (("train", train.non_speech), ("test", test.non_speech)):
        rng = random.Random(f"{seed}-non-speech-{split}")
        for i in range(n):
            kind = NON_SPEECH_KINDS[i % len(NON_SPEECH_KINDS)]
            # log-uniform 0.5 .. 30 s: most short, as between utterances, some a whole chunk
            seconds = round(math.exp(rng.uniform(math.log(0.5), math.log(MAX_SECONDS))), 2)
            seed_ = f"{seed}-non-speech-{split}-{i}"
            out[split].append(Clip("non-speech", NO_SPEECH, (), (), f"non-speech:{kind}", seed_, seconds))
    return out["train"], out["test"]


def _voice(name: str) -> Voice:
    engine, _, voice = name.partition(":")
    return Voice(engine, voice)


def _audio(clip: Clip) -> tuple[np.ndarray, str]:
    """The clip's samples and its transcript: a clip that comes out longer than 30 s loses
    sentences from its end until it fits."""
    if clip.kind == "non-speech":
        return render_non_speech(clip.voice.partition(":")[2], clip.seconds, clip.seed), ""
    for n in range(len(clip.spoken), 0, -1):
        audio = render(list(clip.spoken[:n]), _voice(clip.voice), clip.seed)
        if len(audio) <= MAX_SECONDS * SAMPLE_RATE or n == 1:
            return audio[: int(MAX_SECONDS * SAMPLE_RATE)], " ".join(clip.written[:n])
    raise AssertionError("unreachable")


def spoken_transcripts(clips: list[Clip], transcripts: list[str]) -> list[str]:
    """The spoken form of each clip's transcript: the words its engine read for the sentences the
    transcript holds (a clip cut to 30 s keeps its first sentences, see ``_audio``).

    Raises ValueError if a transcript is not the clip's first sentences joined."""
    out = []
    for clip, text in zip(clips, transcripts, strict=True):
        kept = (n for n in range(len(clip.written), -1, -1) if " ".join(clip.written[:n]) == text)
        n = next(kept, None)
        if n is None:
            raise ValueError(f"transcript {text!r} is not made of the sentences {clip.written!r}")
        out.append(" ".join(clip.spoken[:n]))
    return out


@functools.cache
def _mel() -> LogMel:
    return LogMel(MelSpec())


def features_of(audio: np.ndarray) -> np.ndarray:
    """Log-mel features of 16 kHz samples as the model sees them: (n_mels, frames) float16."""
    return _mel()(audio).astype(np.float16)


def _features(clip: Clip) -> tuple[np.ndarray, str]:
    audio, text = _audio(clip)
    return features_of(audio), text


def _fingerprint(clips: Iterable[Clip]) -> str:
    h = hashlib.sha256(f"render-{RENDER_VERSION}".encode())
    for clip in clips:
        h.update(json.dumps(asdict(clip), ensure_ascii=False).encode())
    return h.hexdigest()[:12]


def _check_tools() -> None:
    missing = missing_tools() + missing_word_lists()
    if missing:
        raise RuntimeError(
            f"the demo data needs {', '.join(missing)}: apt-get install espeak-ng flite festival "
            "festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts sox wamerican wngerman and "
            "pip install wordfreq (scripts/setup.sh does both)"
        )


def train_set(clips: list[Clip], work: Path, log=print) -> TrainSet:
    path = work / f"train-{_fingerprint(clips)}.npz"
    if not path.is_file():
        _check_tools()
        log(f"synthesizing {len(clips)} training clips into {path}")
        with ProcessPoolExecutor(usable_cpus()) as pool:
            feats, texts = zip(*pool.map(_features, clips, chunksize=16), strict=True)
        lengths = np.array([f.shape[1] for f in feats])
        tmp = path.with_suffix(".tmp.npz")
        np.savez(
            tmp,
            features=np.concatenate(feats, axis=1),
            lengths=lengths,
            texts=np.array(texts),
            languages=np.array([c.language for c in clips]),
            kinds=np.array([c.kind for c in clips]),
        )
        tmp.replace(path)
    data = np.load(path)
    ends = np.cumsum(data["lengths"])
    feats = np.split(data["features"], ends[:-1], axis=1)
    texts = [str(t) for t in data["texts"]]
    return TrainSet(feats, texts, [str(x) for x in data["languages"]], spoken_transcripts(clips, texts))


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
            rendered = list(pool.map(_audio, clips, chunksize=4))
        lines = []
        for i, (clip, (audio, text)) in enumerate(zip(clips, rendered, strict=True)):
            name = f"{i:04d}.wav"
            sf.write(tmp / name, audio, SAMPLE_RATE, subtype="PCM_16")
            record = {
                "audio": name,
                "kind": clip.kind,
                "language": clip.language,
                "text": text,
                "voice": clip.voice,
            }
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
