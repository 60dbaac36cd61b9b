"""Where a bundle comes from when the user names none: the built-in demo model, or a checkpoint
(hub id or folder) exported once on first use and cached.

    demo_bundle()                    the small English + German model shipped in the package
    cached_bundle("Qwen/Qwen3-ASR-0.6B", "int4")
        -> ~/.cache/qwen-asr-edge/bundles/Qwen--Qwen3-ASR-0.6B-int4   (exported and quantized
           on first use: needs the [export] extra and, for a hub id, the network once)

The cache folder is ``$QWEN_ASR_EDGE_CACHE``, else ``$XDG_CACHE_HOME/qwen-asr-edge``, else
``~/.cache/qwen-asr-edge``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from importlib import resources
from pathlib import Path

from .errors import MissingDependencyError

log = logging.getLogger(__name__)

DEMO_NOTE = (
    "using the built-in demo model (English and German, trained on synthetic speech); "
    "pass --model Qwen/Qwen3-ASR-0.6B or --bundle DIR for a real one"
)


def _assets() -> Path:
    return Path(str(resources.files(__package__).joinpath("assets/demo")))


def demo_bundle() -> Path:
    """The demo model's fp32 bundle, shipped as package data."""
    return _assets() / "bundle"


def demo_examples() -> list[dict]:
    """The shipped example recordings: {"audio": path, "language", "text" (what it says), "voice"}."""
    folder = _assets() / "examples"
    records = json.loads((folder / "examples.json").read_text(encoding="utf-8"))
    return [{**r, "audio": str(folder / r["audio"])} for r in records]


def cache_dir() -> Path:
    if os.environ.get("QWEN_ASR_EDGE_CACHE"):
        return Path(os.environ["QWEN_ASR_EDGE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "qwen-asr-edge"


def cache_key(source: str) -> str:
    """A folder name for a source: ``owner--name`` for a hub id, ``name-<hash of the path>`` for a
    local folder (two folders of the same name do not collide)."""
    path = Path(source).expanduser()
    if path.exists() or source.startswith((".", "/", "~")):
        resolved = path.resolve()
        return f"{resolved.name}-{hashlib.sha256(str(resolved).encode()).hexdigest()[:10]}"
    return re.sub(r"[^A-Za-z0-9._-]", "-", source.replace("/", "--"))


def cached_bundle(source: str, recipe: str | None = None) -> Path:
    """The bundle exported from ``source`` (and quantized with ``recipe``, e.g. "int4"): reused
    from the cache, or made into it now."""
    out = cache_dir() / "bundles" / (cache_key(source) + (f"-{recipe}" if recipe else ""))
    if (out / "manifest.json").is_file():
        return out
    from qwen_asr_edge.export.build import build_bundle  # needs no torch until it runs

    log.warning("exporting %s to %s (first use; later runs reuse it)", source, out)
    try:
        return build_bundle(source, out, recipe=recipe, overwrite=True)[0]
    except MissingDependencyError as e:
        raise MissingDependencyError(f"{e.what}, on first use (or pass --bundle)", e.extra) from None
