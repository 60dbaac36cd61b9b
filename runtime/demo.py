"""The built-in demo model: a small English + German model of the Qwen3-ASR architecture, trained
here on synthetic speech (``python -m demo.train``), shipped as package data. ``transcribe`` uses
it when no bundle or model is named.

    demo_bundle()      its fp32 bundle folder
    demo_examples()    the example recordings shipped with it, and what they say
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

DEMO_NOTE = (
    "using the built-in demo model (English and German, trained on synthetic speech); "
    "pass --model Qwen/Qwen3-ASR-0.6B or --bundle DIR for a real one"
)


def _assets() -> Path:
    return Path(str(resources.files(__package__).joinpath("assets/demo")))


def demo_bundle() -> Path:
    """The demo model's fp32 bundle, shipped as package data.

    Returns:
        The bundle folder.
    """
    return _assets() / "bundle"


def demo_examples() -> list[dict]:
    """The shipped example recordings.

    Returns:
        One dict per recording: ``audio`` (path), ``language``, ``text`` (what it says), ``voice``.
    """
    folder = _assets() / "examples"
    records = json.loads((folder / "examples.json").read_text(encoding="utf-8"))
    return [{**r, "audio": str(folder / r["audio"])} for r in records]
