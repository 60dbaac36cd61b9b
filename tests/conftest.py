"""Shared fixtures: tiny random checkpoints in the official layout, their bundles, the official
package loaded on the same checkpoints, and audio clips. Nothing here touches the network."""

from __future__ import annotations

import os
import subprocess
import sys
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


def pytest_report_header(config):
    import onnxruntime

    lines = [f"onnxruntime {onnxruntime.__version__}, providers {onnxruntime.get_available_providers()}"]
    try:
        import qwen_asr  # noqa: F401
        import torch
        import transformers

        lines.append(f"torch {torch.__version__}, transformers {transformers.__version__} (oracle: qwen-asr)")
    except ImportError:
        lines.append("official qwen-asr not installed: parity tests will be skipped")
    lines.append(f"Qwen3 vocabulary: {VOCAB_DIR if (VOCAB_DIR / 'vocab.json').is_file() else 'missing'}")
    return lines


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


@pytest.fixture(scope="session")
def vocab_dir() -> Path:
    require((VOCAB_DIR / "vocab.json").is_file(), "the real Qwen3 vocabulary")
    return VOCAB_DIR


@pytest.fixture(scope="session")
def speech_files() -> list[Path]:
    files = sorted((SPEECH_DIR / "librivox").glob("*.wav"))
    require(bool(files), "pocketsphinx-testdata (apt-get install pocketsphinx-testdata)")
    return files


def noise_clip(seconds: float, seed: int = 0) -> np.ndarray:
    """Band-limited noise with some structure: a cheap stand-in for speech on random weights."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    wav = 0.1 * rng.standard_normal(n) + 0.2 * np.sin(2 * np.pi * (200 + 300 * seed) * t)
    return wav.astype(np.float32)


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory, vocab_dir) -> dict[str, Path]:
    """Tiny checkpoints: tied and untied heads, different head counts, one sharded as
    save_pretrained writes it (tied head dropped). Weights have unit gain ("peaky") so that
    argmax decisions have margins far above fp32 round-off."""
    from qwen_asr_edge.export.synthetic import write_checkpoint

    root = tmp_path_factory.mktemp("checkpoints")
    return {
        "untied": write_checkpoint(
            root / "untied", "tiny", seed=3, peaky=True, tie=False, vocab_dir=vocab_dir
        ),
        "tied": write_checkpoint(
            root / "tied",
            "tiny",
            seed=5,
            peaky=True,
            tie=True,
            heads=(8, 2),
            vocab_dir=vocab_dir,
            shards=2,
            store_tied_head=False,
        ),
        "aligner": write_checkpoint(
            root / "aligner", "tiny", seed=7, peaky=True, vocab_dir=vocab_dir, aligner=True
        ),
    }


@pytest.fixture(scope="session")
def bundles(tmp_path_factory, checkpoints) -> dict[str, Path]:
    from qwen_asr_edge.export.write import export_bundle

    root = tmp_path_factory.mktemp("bundles")
    return {
        "untied-full": export_bundle(
            str(checkpoints["untied"]), root / "untied-full", encoder_attention="full"
        ),
        "untied-windowed": export_bundle(str(checkpoints["untied"]), root / "untied-windowed"),
        "tied-full": export_bundle(str(checkpoints["tied"]), root / "tied-full", encoder_attention="full"),
        # The same with the decoder in standard ONNX ops instead of GroupQueryAttention.
        "untied-full-portable": export_bundle(
            str(checkpoints["untied"]),
            root / "untied-full-portable",
            encoder_attention="full",
            decoder_attention="portable",
        ),
        "tied-full-portable": export_bundle(
            str(checkpoints["tied"]),
            root / "tied-full-portable",
            encoder_attention="full",
            decoder_attention="portable",
        ),
        # An ASR bundle that also holds the forced aligner's graphs.
        "untied-full-aligner": export_bundle(
            str(checkpoints["untied"]),
            root / "untied-full-aligner",
            encoder_attention="full",
            aligner=str(checkpoints["aligner"]),
        ),
    }


@pytest.fixture(scope="session")
def official():
    """Load the official Qwen3ASRModel (fp32, CPU) for a checkpoint, once per checkpoint."""
    pytest.importorskip("qwen_asr")
    import torch
    from qwen_asr import Qwen3ASRModel

    cache = {}

    def load(path: Path):
        if path not in cache:
            cache[path] = Qwen3ASRModel.from_pretrained(
                str(path),
                dtype=torch.float32,
                device_map="cpu",
                max_new_tokens=PARITY_TOKENS,
                max_inference_batch_size=8,
            )
        return cache[path]

    return load


# Largest errors seen per metric, printed at the end of the run (quoted in the README).
MEASURED: dict[str, float] = {}


def record_error(metric: str, value: float) -> None:
    MEASURED[metric] = max(MEASURED.get(metric, 0.0), float(value))


def pytest_terminal_summary(terminalreporter):
    if MEASURED:
        terminalreporter.section("largest errors measured against the official package")
        for metric, value in sorted(MEASURED.items()):
            terminalreporter.write_line(f"{metric:<40} {value:.3e}")
