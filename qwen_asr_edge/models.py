"""A bundle for a checkpoint named on the command line (``--model``): exported once on first use,
cached, and reused.

    cached_bundle("Qwen/Qwen3-ASR-0.6B", "int4")
        -> ~/.cache/qwen-asr-edge/bundles/Qwen--Qwen3-ASR-0.6B-int4   (exported and quantized
           on first use: needs the [export] extra and, for a hub id, the network once)

The cache folder is ``$QWEN_ASR_EDGE_CACHE``, else ``$XDG_CACHE_HOME/qwen-asr-edge``, else
``~/.cache/qwen-asr-edge``. This lives above the parts (as faster-whisper keeps ``download_model``
out of its engine): it joins export and the runtime, and the runtime never imports export; the
``qwen-asr-edge`` dispatcher hands :func:`cached_bundle` to the transcribe command.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path

from qwen_asr_edge.runtime.bundle import MANIFEST_NAME
from qwen_asr_edge.runtime.errors import CheckpointError, MissingDependencyError

log = logging.getLogger("qwen_asr_edge.models")


def cache_dir() -> Path:
    """The cache folder: ``$QWEN_ASR_EDGE_CACHE``, else ``$XDG_CACHE_HOME/qwen-asr-edge``, else
    ``~/.cache/qwen-asr-edge``.

    Returns:
        The folder (it may not exist yet).
    """
    if os.environ.get("QWEN_ASR_EDGE_CACHE"):
        return Path(os.environ["QWEN_ASR_EDGE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "qwen-asr-edge"


def cache_key(source: str) -> str:
    """A folder name for a source: ``owner--name`` for a hub id, ``name-<hash of the path>`` for a
    local folder (two folders of the same name do not collide).

    Args:
        source: a hub id or a checkpoint folder.

    Returns:
        The folder name under the cache's ``bundles/``.
    """
    path = Path(source).expanduser()
    if path.exists() or source.startswith((".", "/", "~")):
        resolved = path.resolve()
        return f"{resolved.name}-{hashlib.sha256(str(resolved).encode()).hexdigest()[:10]}"
    return re.sub(r"[^A-Za-z0-9._-]", "-", source.replace("/", "--"))


def cached_bundle(source: str, recipe: str | None = None) -> Path:
    """The bundle exported from ``source`` (and quantized with ``recipe``): reused from the cache,
    or built into it now with :func:`qwen_asr_edge.export.build.build_bundle`.

    Args:
        source: a hub id (``Qwen/Qwen3-ASR-0.6B``) or a checkpoint folder.
        recipe: a quantization recipe name ("int8", "int4", "int4-gptq", "fp16"); None for fp32.

    A cached quantized bundle whose recipe settings are not the recipe's today (int8 was dynamic
    ``MatMulInteger`` before this version) is built again: it would still run, but not as the
    recipe now promises (batch-invariant, the same on every CPU). So is one whose local
    checkpoint folder's files changed (sizes or times) since it was built.

    Returns:
        The bundle folder in the cache.

    Raises:
        MissingDependencyError: it must be built and the ``[export]`` extra is not installed.
        CheckpointError: the checkpoint is missing or cannot be fetched (nothing is cached then).
        InputError: an unknown recipe.
    """
    out = cache_dir() / "bundles" / (cache_key(source) + (f"-{recipe}" if recipe else ""))
    fingerprint = _fingerprint(source)
    again = None  # why a cached bundle is built again
    if (out / MANIFEST_NAME).is_file():
        changed = _stale_recipe(out, recipe)
        recorded = _recorded_fingerprint(out)
        if changed:
            again = f" was quantized with an earlier {recipe} recipe ({changed})"
        elif fingerprint is not None and recorded is not None and recorded != fingerprint:
            again = ": its checkpoint folder changed since"
        else:
            return out
    if source.startswith(("/", ".", "~")) and not Path(source).expanduser().exists():
        raise CheckpointError(source, "no such folder")  # a path, not a hub id: say so before "exporting"
    from qwen_asr_edge.export.build import build_bundle  # imports no torch until it runs

    if again:
        log.warning("%s%s; building it again", out, again)
    else:
        log.warning("exporting %s to %s (first use; later runs reuse it)", source, out)
    try:
        built = build_bundle(source, out, recipe=recipe, overwrite=True)[0]
    except MissingDependencyError as e:
        raise MissingDependencyError(f"{e.what}, on first use (or pass --bundle)", e.extra) from None
    if fingerprint is not None:
        (built / SOURCE_RECORD).write_text(json.dumps(fingerprint), encoding="utf-8")
    return built


# Beside a cached bundle's files (not in its manifest): what its local checkpoint folder held.
SOURCE_RECORD = "source.json"


def _fingerprint(source: str) -> list | None:
    """A local checkpoint folder's files as [name, bytes, mtime_ns] (None for a hub id): a bundle
    cached from it is built again when they change (new weights written to the same path)."""
    folder = Path(source).expanduser()
    if not folder.is_dir():
        return None
    return sorted([f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in folder.iterdir() if f.is_file())


def _recorded_fingerprint(bundle: Path) -> list | None:
    try:
        return json.loads((bundle / SOURCE_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _stale_recipe(bundle: Path, recipe: str | None) -> str:
    """What differs between a cached bundle's recipe settings and ``recipe``'s today ("" if
    nothing does, or if there is no bundle or no recipe)."""
    manifest = bundle / MANIFEST_NAME
    if recipe is None or not manifest.is_file():
        return ""
    from qwen_asr_edge.quant.recipes import get_recipe, recipe_changes  # data only: no onnx, no torch

    try:
        built = json.loads(manifest.read_text(encoding="utf-8")).get("quantization") or {}
    except (OSError, ValueError):
        return "an unreadable manifest"
    return recipe_changes(built, get_recipe(recipe))
