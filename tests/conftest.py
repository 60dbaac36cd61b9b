"""Shared fixtures: tiny random checkpoints in the official layout, their bundles, the official
package loaded on the same checkpoints, and audio clips. Nothing here touches the network."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from tests.support import MEASURED, PARITY_TOKENS, SPEECH_DIR, VOCAB_DIR, Lazy, require

# The official package and what it brings for the comparisons (transformers, librosa): importing
# them costs seconds, and a runtime-only install has none of them.
_NAMES = r"(?:qwen_asr|transformers|librosa)\b"
_IN_BODY = re.compile(rf"^\s*(?:from|import)\s+{_NAMES}|importorskip\(\s*[\"']{_NAMES}", re.M)
_AT_TOP = re.compile(rf"^(?:from|import)\s+{_NAMES}|^[^\s#].*importorskip\(\s*[\"']{_NAMES}", re.M)


def _source(obj) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return ""


def _needs_oracle(item) -> bool:
    """Uses the ``official`` fixture, or imports the oracle in its module, its body or a fixture."""
    if "official" in item.fixturenames:
        return True
    module = getattr(item, "module", None)
    if module is not None and _AT_TOP.search(_source(module)):
        return True
    fixtures = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    functions = [getattr(item, "function", None)] + [d.func for defs in fixtures.values() for d in defs]
    return any(_IN_BODY.search(_source(f)) for f in functions if f is not None)


def _excludes_oracle(config) -> bool:
    """Whether ``-m`` leaves out every test marked oracle, whatever other marks it carries (checked
    with all of them absent and all present)."""
    text = config.getoption("markexpr", "")
    if not text:
        return False
    try:
        from _pytest.mark.expression import Expression  # pytest's own -m parser (private; stable since 6)

        expression = Expression.compile(text)
    except Exception:
        return False

    def selected(others: bool) -> bool:
        return expression.evaluate(lambda name, **_: name == "oracle" or others)

    return not selected(False) and not selected(True)


def pytest_configure(config):
    """A suite started as a background job of a non-interactive shell (``cmd &``) inherits SIGINT
    ignored, and so does every CLI it starts: Python then installs no KeyboardInterrupt handler,
    and the Ctrl-C tests fail or wait forever. Run as if from a terminal: a Python handler here
    is reset to the default in each child at exec."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_ignore_collect(collection_path, config):
    """A module that imports the oracle at its top is not even imported when oracle tests are left
    out: importing qwen_asr alone takes seconds, which the inner loop should not pay."""
    if (
        collection_path.suffix == ".py"
        and collection_path.name.startswith("test_")
        and _excludes_oracle(config)
    ):
        return bool(_AT_TOP.search(collection_path.read_text(encoding="utf-8"))) or None
    return None


# An export of a tiny bundle takes 5-20 s on 2 cores, so the inner loop exports one kind only:
# a test parametrized over another kind is slow. (Tests that read other kinds in their body carry
# the decorator themselves.)
BUNDLE_KINDS = (
    "untied-full",
    "untied-windowed",
    "untied-windowed-portable",
    "tied-full",
    "untied-full-portable",
    "tied-full-portable",
    "untied-full-aligner",
    "realistic-full",
)
INNER_LOOP_BUNDLE = "tied-full"


def _needs_another_bundle(item) -> bool:
    params = getattr(getattr(item, "callspec", None), "params", {})
    return any(v in BUNDLE_KINDS and v != INNER_LOOP_BUNDLE for v in params.values() if isinstance(v, str))


def pytest_collection_modifyitems(config, items):
    """Mark what needs the official package ``oracle`` (``-m "not oracle"`` leaves it out), and
    ``slow`` what exports a bundle beyond the inner loop's one."""
    for item in items:
        if _needs_oracle(item):
            item.add_marker(pytest.mark.oracle)
        if _needs_another_bundle(item):
            item.add_marker(pytest.mark.slow)


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
            # Real models' statistics (massive activations, attention sinks, logits near 30),
            # tied like the 0.6B release.
            "realistic": lambda: write_checkpoint(
                root / "realistic", "tiny", seed=11, realistic=True, tie=True, vocab_dir=vocab_dir
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

    made = Lazy(
        {
            "untied-full": make("untied-full", "untied", encoder_attention="full"),
            "untied-windowed": make("untied-windowed", "untied"),
            "untied-windowed-portable": make(
                "untied-windowed-portable", "untied", decoder_attention="portable"
            ),
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
            "realistic-full": make("realistic-full", "realistic", encoder_attention="full"),
        }
    )
    assert tuple(made) == BUNDLE_KINDS
    return made


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


@pytest.fixture
def python_sigint():
    """Python's own SIGINT handler for a test that sends itself Ctrl-C and expects
    KeyboardInterrupt: in a whole-suite run an earlier import can have installed another (the
    listen test then waited forever for a Ctrl-C that never raised)."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
