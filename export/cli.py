"""``qwen-asr-edge export SRC OUT``: a checkpoint folder or hub id -> a bundle folder."""

from __future__ import annotations

import argparse
import sys

from qwen_asr_edge.quant.cli import add_recipe_arguments
from qwen_asr_edge.runtime.console import PROGRESS, path_argument, run_command


def nonempty(value: str) -> str:
    """argparse ``type=`` for a source that may be a hub id: an empty one is refused."""
    return str(path_argument(value))


def parse_args(argv: list[str] | None = None, prog: str = "qwen-asr-edge export") -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description="Export a Qwen3-ASR checkpoint to an ONNX bundle.")
    p.add_argument(
        "source",
        type=nonempty,
        help="checkpoint folder in the official layout, or a hub id such as Qwen/Qwen3-ASR-0.6B",
    )
    p.add_argument("out", type=path_argument, help="bundle folder to write")
    p.add_argument(
        "--encoder-attention",
        choices=["windowed", "full"],
        default="windowed",
        help="windowed: 8 s windows, linear in length, as trained (default); "
        "full: whole-clip attention, as the official CPU path computes it",
    )
    p.add_argument(
        "--decoder-attention",
        choices=["gqa", "portable"],
        default="gqa",
        help="gqa: onnxruntime's fused GroupQueryAttention, in-place KV cache (default); "
        "portable: standard ONNX ops only, for runtimes without onnxruntime's contrib ops",
    )
    p.add_argument(
        "--aligner",
        metavar="SRC",
        help="a Qwen3-ForcedAligner checkpoint (folder or hub id) to put in the bundle, for word times",
    )
    add_recipe_arguments(p, required=False)
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--no-validate", action="store_true", help="skip the ONNX-vs-torch check")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p.parse_args(argv)


def export(args: argparse.Namespace) -> int:
    """Build the bundle ``args.out`` from ``args.source`` and print its path (and, quantized, the
    quality report on stderr).

    Returns:
        The exit code, 0.

    Raises:
        QwenAsrEdgeError: see :func:`qwen_asr_edge.export.build.build_bundle`.
    """
    from .build import build_bundle

    out, report = build_bundle(
        args.source,
        args.out,
        recipe=args.recipe,
        block_size=args.block_size,
        kv_cache=args.kv_cache,
        int8_op=args.int8_op,
        calibration=args.calibration,
        aligner=args.aligner,
        encoder_attention=args.encoder_attention,
        decoder_attention=args.decoder_attention,
        validate=not args.no_validate,
        overwrite=args.force,
    )
    if report is not None:
        from qwen_asr_edge.quant.quality import table

        print(table(report), file=sys.stderr)
    print(out)
    return 0


def main(argv: list[str] | None = None, prog: str = "qwen-asr-edge export") -> int:
    """``qwen-asr-edge export``: progress on stderr, the bundle's path on stdout.

    Args:
        argv: the arguments after the command name (default: ``sys.argv[1:]``).
        prog: the program name for usage lines.

    Returns:
        The exit code: 0, or 2 for a bad checkpoint, option or existing OUT.
    """
    args = parse_args(argv, prog)
    return run_command(lambda: export(args), debug=args.debug, progress=PROGRESS)
