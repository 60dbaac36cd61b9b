"""Helpers the tests share (imported as ``tests.support``); the fixtures are in conftest.py."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
VOCAB_DIR = Path(os.environ.get("QWEN3_VOCAB_DIR", ROOT / ".cache" / "qwen3-vocab"))
SPEECH_DIR = Path("/usr/share/pocketsphinx/test/data")
IN_CI = os.environ.get("CI", "") not in ("", "0", "false")
SR = 16000
# Generated tokens compared per parity case: enough to cover many decode steps, cheap on tiny models.
PARITY_TOKENS = 24


def parity_options(**more):
    """TranscriptionOptions that compare with the official package: its token cap, and no repetition
    guard (the official package has none, and the tiny random models do loop)."""
    from qwen_asr_edge.runtime.options import TranscriptionOptions

    return TranscriptionOptions(max_new_tokens=PARITY_TOKENS, repetition_guard=None, **more)


def run_cli(*args, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``qwen-asr-edge ARGS`` in a fresh process, as a user would."""
    command = [sys.executable, "-m", "qwen_asr_edge", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


def require(condition: bool, what: str) -> None:
    """Skip when optional test data is missing locally; in CI a missing input is a failure."""
    if not condition:
        if IN_CI:
            pytest.fail(f"{what} is missing in CI: scripts/setup.sh should have provided it")
        pytest.skip(f"{what} is missing (run scripts/setup.sh)")


def truncation_warnings(caplog) -> list[str]:
    """The package's truncation warnings among caplog's records (by their ": truncated:" marker: a
    test's tmp path may hold the word "truncated" too)."""
    return [r.getMessage() for r in caplog.records if ": truncated:" in r.getMessage()]


def noise_clip(seconds: float, seed: int = 0) -> np.ndarray:
    """Band-limited noise with some structure: a cheap stand-in for speech on random weights."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    wav = 0.1 * rng.standard_normal(n) + 0.2 * np.sin(2 * np.pi * (200 + 300 * seed) * t)
    return wav.astype(np.float32)


def clear_decisions(
    ref, cand, seconds: tuple[float, ...], seed: int, margin: float, max_new_tokens: int = 24
):
    """Teacher-forced on ``ref``'s own greedy tokens for noise clips of ``seconds``, with ``ref``'s
    audio embeddings for both (the decoders are compared): the steps where ``ref``'s top two
    logits are more than ``margin`` apart, how many of those ``cand`` picks the same, the largest
    logit error over all steps, and per clip (wav, tokens, whether every step was clear)."""
    from qwen_asr_edge.runtime.options import TranscriptionOptions

    decided, agreed, error, clips = 0, 0, 0.0, []
    for s in seconds:
        wav = noise_clip(s, seed=seed)
        tokens = (
            ref.transcribe(wav, options=TranscriptionOptions(max_new_tokens=max_new_tokens))
            .segments[0]
            .tokens
        )
        audio = ref.encode([wav]).row(0)
        prompt = ref.prompt_ids(int(audio.lengths[0]))
        want = ref.forced_logits(prompt, audio, tokens[:-1])
        got = cand.forced_logits(prompt, audio, tokens[:-1])
        top2 = np.sort(want, axis=-1)[:, -2:]
        clear = (top2[:, 1] - top2[:, 0]) > margin
        decided += int(clear.sum())
        agreed += int((got.argmax(-1) == want.argmax(-1))[clear].sum())
        error = max(error, float(np.abs(got - want).max()))
        clips.append((wav, tokens, bool(clear.all())))
    return decided, agreed, error, clips


# Largest errors seen per metric, printed at the end of the run (quoted in the README).
MEASURED: dict[str, float] = {}


def record_error(metric: str, value: float) -> None:
    MEASURED[metric] = max(MEASURED.get(metric, 0.0), float(value))


class Lazy(Mapping):
    """A read-only mapping that builds each value on first access, so a test pays only for the
    checkpoints and bundles it uses (an export costs seconds; a session used to make all six)."""

    def __init__(self, makers: dict[str, Callable[[], Path]]):
        self._makers, self._made = makers, {}

    def __getitem__(self, key: str) -> Path:
        if key not in self._made:
            self._made[key] = self._makers[key]()
        return self._made[key]

    def __iter__(self):
        return iter(self._makers)

    def __len__(self) -> int:
        return len(self._makers)


def write_media(
    path: Path, wav: np.ndarray | None, codec: str = "aac", *, video: bool = False, rate: int = SR
) -> Path:
    """Write a compressed file with PyAV (needs the [media] extra): ``wav`` (mono float32 at ``rate``)
    as ``codec`` ("aac", "libopus", "libmp3lame", "flac"), none when None, and a tiny black video
    stream when ``video``; the container comes from the suffix (.m4a, .mp4, .mkv, .webm)."""
    import av

    with av.open(str(path), "w") as out:
        if video:
            picture = out.add_stream("vp8" if path.suffix == ".webm" else "mpeg4", rate=10)
            picture.width, picture.height, picture.pix_fmt = 32, 32, "yuv420p"
        if wav is not None:
            sound = out.add_stream(codec, rate=rate, layout="mono")
            for i in range(0, wav.size, 1024):
                frame = av.AudioFrame.from_ndarray(
                    wav[None, i : i + 1024].copy(), format="flt", layout="mono"
                )
                frame.sample_rate = rate
                out.mux(sound.encode(frame))
            out.mux(sound.encode(None))
        if video:
            seconds = wav.size / rate if wav is not None else 2.0
            for _ in range(int(seconds * 10)):
                out.mux(picture.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), "rgb24")))
            out.mux(picture.encode(None))
    return path


def official_where_well_formed(want, segment, tokenizer, language: str | None) -> tuple[str, str]:
    """The (language, text) a segment must have, given the official package's result ``want`` for
    the same tokens: the official one where the model's output is well formed; elsewhere (random
    weights write no ``<asr_text>`` unless the language is forced) what parse_transcript promises
    instead: no control markup, and "" when the output never reached ``<asr_text>``."""
    from qwen_asr_edge.runtime.parsing import parse_transcript, well_formed

    raw = tokenizer.decode(segment.tokens)
    truncated = segment.finish_reason == "length"
    if well_formed(raw, language, truncated=truncated):
        return want.language, want.text
    parsed = parse_transcript(raw, language, truncated=truncated)
    return parsed.language, parsed.text
