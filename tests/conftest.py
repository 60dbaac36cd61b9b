"""Shared fixtures: tiny random checkpoints in the official layout, their bundles, the official
package loaded on the same checkpoints, and audio clips. Nothing here touches the network."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from tests.support import MEASURED, PARITY_TOKENS, SPEECH_DIR, VOCAB_DIR, Lazy, require


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


@pytest.fixture(scope="session")
def vocab_dir() -> Path:
    require((VOCAB_DIR / "vocab.json").is_file(), "the real Qwen3 vocabulary")
    return VOCAB_DIR


@pytest.fixture(scope="session")
def speech_files() -> list[Path]:
    files = sorted((SPEECH_DIR / "librivox").glob("*.wav"))
    require(bool(files), "pocketsphinx-testdata (apt-get install pocketsphinx-testdata)")
    return files


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory, vocab_dir) -> Mapping[str, Path]:
    """Tiny checkpoints: tied and untied heads, different head counts, one sharded as
    save_pretrained writes it (tied head dropped). Weights have unit gain ("peaky") so that
    argmax decisions have margins far above fp32 round-off."""
    from qwen_asr_edge.export.synthetic import write_checkpoint

    root = tmp_path_factory.mktemp("checkpoints")
    return Lazy(
        {
            "untied": lambda: write_checkpoint(
                root / "untied", "tiny", seed=3, peaky=True, tie=False, vocab_dir=vocab_dir
            ),
            "tied": lambda: write_checkpoint(
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
            "aligner": lambda: write_checkpoint(
                root / "aligner", "tiny", seed=7, peaky=True, vocab_dir=vocab_dir, aligner=True
            ),
        }
    )


@pytest.fixture(scope="session")
def bundles(tmp_path_factory, checkpoints) -> Mapping[str, Path]:
    """Bundles of the tiny checkpoints, each exported the first time a test asks for it."""
    from qwen_asr_edge.export.write import export_bundle

    root = tmp_path_factory.mktemp("bundles")

    def make(name: str, checkpoint: str, **options) -> Callable[[], Path]:
        return lambda: export_bundle(str(checkpoints[checkpoint]), root / name, **options)

    return Lazy(
        {
            "untied-full": make("untied-full", "untied", encoder_attention="full"),
            "untied-windowed": make("untied-windowed", "untied"),
            "tied-full": make("tied-full", "tied", encoder_attention="full"),
            # The same with the decoder in standard ONNX ops instead of GroupQueryAttention.
            "untied-full-portable": make(
                "untied-full-portable", "untied", encoder_attention="full", decoder_attention="portable"
            ),
            "tied-full-portable": make(
                "tied-full-portable", "tied", encoder_attention="full", decoder_attention="portable"
            ),
            # An ASR bundle that also holds the forced aligner's graphs.
            "untied-full-aligner": lambda: export_bundle(
                str(checkpoints["untied"]),
                root / "untied-full-aligner",
                encoder_attention="full",
                aligner=str(checkpoints["aligner"]),
            ),
        }
    )


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


def pytest_terminal_summary(terminalreporter):
    if MEASURED:
        terminalreporter.section("largest errors measured against the official package")
        for metric, value in sorted(MEASURED.items()):
            terminalreporter.write_line(f"{metric:<40} {value:.3e}")
