"""``qwen-asr-edge quantize BUNDLE OUT --recipe NAME``."""

from __future__ import annotations

import argparse
import sys

from qwen_asr_edge.runtime.console import path_argument, run_command
from qwen_asr_edge.runtime.errors import MissingDependencyError

from .recipes import KV_CACHE_TYPES, RECIPES, USER_INT8_OPS, get_recipe


def add_recipe_arguments(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        required=required,
        help="int8: INT8 weights (8-bit MatMulNBits); int4: INT4 weights (decoder) + per-token INT8 encoder; "
        "int4-gptq: the same calibrated with GPTQ; fp16: half precision for GPUs",
    )
    p.add_argument(
        "--block-size",
        type=int,
        help="block size of the narrowest weights: INT4's (default 64), int8's INT8 (128)",
    )
    p.add_argument(
        "--kv-cache",
        choices=KV_CACHE_TYPES,
        help="the decoder's KV cache: fp32 (default) or int8, a quarter of the reads per decode step "
        "(GroupQueryAttention decoders; scales calibrated on --calibration audio)",
    )
    p.add_argument(
        "--int8-op",
        choices=USER_INT8_OPS,
        help="how the int8 layers run: MatMulNBits (int8's default: 8-bit blocks of 128, the most "
        "accurate) or per-token (INT8 with one scale per token: on AVX2 CPUs without VNNI, prefill and "
        "encoder about twice as fast; int4's encoder uses it by default)",
    )
    p.add_argument(
        "--calibration",
        type=path_argument,
        help="folder of audio to calibrate on (GPTQ; the ranges of the int8 KV cache and of the INT8 conv "
        "front end) and for the quality report (default: generated audio; real speech calibrates best)",
    )


def parse_args(argv: list[str] | None = None, prog: str = "qwen-asr-edge quantize") -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description="Quantize an fp32 bundle into a new bundle.")
    p.add_argument("bundle", type=path_argument, help="fp32 bundle written by `qwen-asr-edge export`")
    p.add_argument("out", type=path_argument, help="bundle folder to write")
    add_recipe_arguments(p, required=True)
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p.parse_args(argv)


def quantize(args: argparse.Namespace) -> int:
    """Quantize the bundle ``args.bundle`` into ``args.out``; the path on stdout, the quality
    report on stderr.

    Returns:
        The exit code, 0.

    Raises:
        QwenAsrEdgeError: an unknown recipe, a bundle that is not fp32, an existing OUT, or the
            [export] extra missing.
    """
    try:
        from .quality import table
        from .quantize import quantize_bundle
    except ImportError as e:
        raise MissingDependencyError(f"quantizing ({e.name} is missing)", "export") from None
    recipe = get_recipe(args.recipe, args.block_size, args.kv_cache, args.int8_op)
    path, report = quantize_bundle(
        args.bundle, args.out, recipe, calibration=args.calibration, overwrite=args.force
    )
    print(table(report), file=sys.stderr)
    print(path)
    return 0


def main(argv: list[str] | None = None, prog: str = "qwen-asr-edge quantize") -> int:
    """``qwen-asr-edge quantize``: progress on stderr, the bundle's path on stdout.

    Args:
        argv: the arguments after the command name (default: ``sys.argv[1:]``).
        prog: the program name for usage lines.

    Returns:
        The exit code: 0, or 2 for a bad bundle, recipe or existing OUT.
    """
    args = parse_args(argv, prog)
    return run_command(lambda: quantize(args), debug=args.debug, progress=("qwen_asr_edge.quant",))
