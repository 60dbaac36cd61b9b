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


def noise_clip(seconds: float, seed: int = 0) -> np.ndarray:
    """Band-limited noise with some structure: a cheap stand-in for speech on random weights."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    wav = 0.1 * rng.standard_normal(n) + 0.2 * np.sin(2 * np.pi * (200 + 300 * seed) * t)
    return wav.astype(np.float32)


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
