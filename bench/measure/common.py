"""What the measurements share: clips, text prompts, decode steps, medians and peak RSS."""

from __future__ import annotations

import json
import statistics

import numpy as np


def clip(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Noise at 16 kHz: random weights cost the same on any audio."""
    return (rng.standard_normal(int(seconds * 16000)) * 0.1).astype(np.float32)


def text_prompt(tr, context: int, rng: np.random.Generator) -> np.ndarray:
    """``context`` random token ids clear of the vocabulary's ends (no audio, no control tokens
    at the top): a text-only prompt whose decode steps run at that context."""
    return rng.integers(1000, tr.bundle.manifest.model.vocab_size - 1000, context)


def decode_step_seconds(tr, prompt: np.ndarray, steps: int = 24) -> list[float]:
    """Seconds of each of ``steps`` decode steps after ``prompt`` (stop ids ignored), the first
    two left out as warm-up."""
    return tr.decode([prompt], None, [steps + 1], stop=False).step_seconds[2:]


def median(values) -> float:
    return statistics.median(list(values))


def peak_rss_gb() -> float:
    """VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent through fork and exec."""
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("VmHWM")).split()[1]) / 1e6


def emit(result: dict) -> None:
    print(json.dumps(result), flush=True)
