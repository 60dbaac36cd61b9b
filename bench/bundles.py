"""Full-size random-weight checkpoints and their bundles, built once under a work folder and reused.

A bundle is rebuilt when it is missing, was written for another bundle format version, or was
quantized with other recipe settings (``quant.recipes.recipe_changes``).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qwen_asr_edge.quant.recipes import Recipe

log = logging.getLogger("bench")


@dataclass(frozen=True)
class Built:
    path: Path
    report: dict | None  # the quantization quality report; None for fp32
    build_seconds: float | None  # None when reused from an earlier run


def current(bundle: Path, recipe: Recipe | None = None) -> bool:
    """Written for this bundle format and, when given, with ``recipe``'s settings today (a
    recipe's graphs change: int8 was MatMulInteger, now MatMulNBits)."""
    from qwen_asr_edge.quant.recipes import recipe_changes
    from qwen_asr_edge.runtime.bundle import FORMAT_VERSION

    manifest = bundle / "manifest.json"
    if not manifest.exists():
        return False
    data = json.loads(manifest.read_text())
    if recipe is not None and recipe_changes(data.get("quantization") or {}, recipe):
        return False
    return data.get("format_version") == FORMAT_VERSION


def checkpoint(work: Path, shape: str, realistic: bool = False, vocab_dir: Path | None = None) -> Path:
    """A random checkpoint of ``shape``; ``realistic`` plants trained models' activation
    statistics (massive activations, attention sinks, outlier features, logit scale: see
    ``export.synthetic``); ``vocab_dir`` gives it the real Qwen3 vocabulary instead of filler
    tokens (whose text re-tokenizes into ~11 tokens each: streaming re-tokenizes its output)."""
    from qwen_asr_edge.export.synthetic import write_checkpoint

    ck = work / folder(shape, realistic, vocab_dir) / "checkpoint"
    if not (ck / "config.json").exists():
        log.info("writing a random %s checkpoint%s", shape, " with realistic statistics" if realistic else "")
        partial = ck.with_name(ck.name + ".partial")  # renamed when whole: an interrupted write is not reused
        shutil.rmtree(partial, ignore_errors=True)
        write_checkpoint(partial, shape, seed=0, realistic=realistic, vocab_dir=vocab_dir)
        partial.rename(ck)
    return ck


def folder(shape: str, realistic: bool = False, vocab_dir: Path | None = None) -> str:
    return shape + ("-realistic" if realistic else "") + ("-vocab" if vocab_dir else "")


def variant(name: str) -> Recipe:
    """A recipe, or a variant of one for measurement: "int4-b32" (INT4 block size; for int8 the
    INT8 block size), "int4-head8" (the head in INT8), "int4-headfp32" (the head left fp32),
    "int4-kv8" (an int8 KV cache), "int4-conv32" (the encoder's conv front end left fp32),
    "int8-mmi" (every int8 layer as dynamic MatMulInteger), "int8-pt" (every int8 layer as
    per-token INT8, quant.graphs.quantize_per_token), "int4-encnbits" (the encoder's int8 layers as
    8-bit MatMulNBits), "int4-batched" (the encoder's front end batched, not per chunk)."""
    from qwen_asr_edge.quant.recipes import RECIPES, get_recipe

    base = max((r for r in RECIPES if name == r or name.startswith(r + "-")), key=len, default=name)
    recipe = get_recipe(base)
    for part in filter(None, name[len(base) :].split("-")):
        if part.startswith("b") and part[1:].isdigit():
            blocks = get_recipe(base, int(part[1:]))  # INT4's block for int4 recipes, INT8's for int8
            recipe = replace(recipe, block_size=blocks.block_size, int8_block_size=blocks.int8_block_size)
        elif part in ("head8", "headfp32"):
            recipe = replace(recipe, head="int8" if part == "head8" else "fp32")
        elif part == "kv8":
            recipe = replace(recipe, kv_cache="int8")
        elif part == "conv32":
            recipe = replace(recipe, encoder_conv="fp32")
        elif part == "batched":
            recipe = replace(recipe, encoder_front_end="batched")
        elif part in ("mmi", "pt", "encnbits"):
            op = {"mmi": "MatMulInteger", "pt": "per-token", "encnbits": "MatMulNBits"}[part]
            recipe = replace(recipe, encoder_int8_op=op, **({} if part == "encnbits" else {"int8_op": op}))
        else:
            raise ValueError(f"unknown recipe variant {name!r}")
    return recipe


def build(
    work: Path, shape: str, recipes: list[str], realistic: bool = False, vocab_dir: Path | None = None
) -> dict[str, Built]:
    """Recipe names: "fp32", a recipe ("int8", "int4", ...), or a variant (see ``variant``)."""
    from qwen_asr_edge.export.build import build_bundle
    from qwen_asr_edge.quant.quantize import quantize_bundle

    ck = checkpoint(work, shape, realistic, vocab_dir)
    fp32 = work / folder(shape, realistic, vocab_dir) / "fp32"
    out: dict[str, Built] = {}
    if current(fp32):
        out["fp32"] = Built(fp32, None, None)
    else:
        log.info("exporting %s", shape)
        t = time.perf_counter()
        build_bundle(ck, fp32, overwrite=True)
        out["fp32"] = Built(fp32, None, time.perf_counter() - t)
    for name in recipes:
        if name == "fp32":
            continue
        path = work / folder(shape, realistic, vocab_dir) / name
        recipe = variant(name)
        if current(path, recipe) and (path / "quality.json").exists():
            out[name] = Built(path, json.loads((path / "quality.json").read_text()), None)
            continue
        log.info("quantizing %s to %s", shape, name)
        t = time.perf_counter()
        # From the fp32 bundle above: every recipe shares one export.
        _, report = quantize_bundle(fp32, path, recipe, overwrite=True)
        out[name] = Built(path, report, time.perf_counter() - t)
    return out
