"""``qwen-asr-edge quantize BUNDLE OUT --recipe NAME``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from qwen_asr_edge.runtime.errors import InputError, MissingDependencyError, QwenAsrEdgeError

from .recipes import RECIPES, get_recipe


def add_recipe_arguments(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        required=required,
        help="int8: dynamic INT8; int4: INT4 weights (decoder) + INT8 encoder; int4-gptq: the same "
        "calibrated with GPTQ; fp16: half precision for GPUs",
    )
    p.add_argument("--block-size", type=int, help="INT4 block size (default 64)")
    p.add_argument(
        "--calibration",
        type=Path,
        help="folder of audio for GPTQ and the quality report (default: generated audio)",
    )


def parse_args(argv: list[str] | None = None, prog: str = "qwen-asr-edge quantize") -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description="Quantize an fp32 bundle into a new bundle.")
    p.add_argument("bundle", type=Path, help="fp32 bundle written by `qwen-asr-edge export`")
    p.add_argument("out", type=Path, help="bundle folder to write")
    add_recipe_arguments(p, required=True)
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p.parse_args(argv)


def run_quantize(bundle: Path, out: Path, args: argparse.Namespace) -> Path:
    try:
        from .quality import table
        from .quantize import quantize_bundle
    except ImportError as e:
        raise MissingDependencyError(f"quantizing ({e.name} is missing)", "export") from None
    try:
        recipe = get_recipe(args.recipe, args.block_size)
    except ValueError as e:
        raise InputError(str(e)) from None
    path, report = quantize_bundle(bundle, out, recipe, calibration=args.calibration, overwrite=args.force)
    print(table(report), file=sys.stderr)
    return path


def main(argv: list[str] | None = None, prog: str = "qwen-asr-edge quantize") -> int:
    args = parse_args(argv, prog)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("qwen_asr_edge.quant").setLevel(logging.INFO)
    try:
        print(run_quantize(args.bundle, args.out, args))
    except (QwenAsrEdgeError, FileExistsError) as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
