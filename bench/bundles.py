"""Full-size random-weight checkpoints and their bundles, built once under a work folder and reused.

A bundle is rebuilt when it is missing or was written for another bundle format version.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("bench")


@dataclass(frozen=True)
class Built:
    path: Path
    report: dict | None  # the quantization quality report; None for fp32
    build_seconds: float | None  # None when reused from an earlier run


def _current(bundle: Path, quantization: dict | None = None) -> bool:
    """Written for this bundle format and, when given, with these recipe settings (a recipe's
    graphs change: int8 was MatMulInteger, now MatMulNBits)."""
    from qwen_asr_edge.runtime.bundle import FORMAT_VERSION

    manifest = bundle / "manifest.json"
    if not manifest.exists():
        return False
    data = json.loads(manifest.read_text())
    if quantization is not None and data.get("quantization") != quantization:
        return False
    return data.get("format_version") == FORMAT_VERSION


def checkpoint(work: Path, shape: str) -> Path:
    from qwen_asr_edge.export.synthetic import write_checkpoint

    ck = work / shape / "checkpoint"
    if not (ck / "config.json").exists():
        log.info("writing a random %s checkpoint", shape)
        write_checkpoint(ck, shape, seed=0)
    return ck


def build(work: Path, shape: str, recipes: list[str]) -> dict[str, Built]:
    """Recipe names: "fp32", a recipe ("int8", "int4", ...), or "int4-b32" for a block size."""
    from qwen_asr_edge.export.build import build_bundle
    from qwen_asr_edge.quant.recipes import get_recipe

    ck = checkpoint(work, shape)
    fp32 = work / shape / "fp32"
    out: dict[str, Built] = {}
    if _current(fp32):
        out["fp32"] = Built(fp32, None, None)
    else:
        log.info("exporting %s", shape)
        t = time.perf_counter()
        build_bundle(ck, fp32, overwrite=True)
        out["fp32"] = Built(fp32, None, time.perf_counter() - t)
    for name in recipes:
        if name == "fp32":
            continue
        path = work / shape / name
        recipe_name, _, block = name.partition("-b")
        settings = get_recipe(recipe_name, int(block) if block else None).describe()
        if _current(path, settings) and (path / "quality.json").exists():
            out[name] = Built(path, json.loads((path / "quality.json").read_text()), None)
            continue
        log.info("quantizing %s to %s", shape, name)
        t = time.perf_counter()
        # From the fp32 bundle above: every recipe shares one export.
        _, report = build_bundle(
            fp32, path, recipe=recipe_name, block_size=int(block) if block else None, overwrite=True
        )
        out[name] = Built(path, report, time.perf_counter() - t)
    return out
