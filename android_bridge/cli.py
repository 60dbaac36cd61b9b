"""``qwen-asr-edge android-pack BUNDLE OUT``: a mobile bundle for Android and other JVM apps."""

from __future__ import annotations

import argparse

from qwen_asr_edge.runtime.console import path_argument, run_command

from .pack import GRAPH_FORMATS, pack_bundle


def parse_args(argv: list[str] | None = None, prog: str = "qwen-asr-edge android-pack") -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Write a mobile bundle (android_bridge/README.md) for Android and other JVM apps: "
        "ORT-format graphs (log-mel front end, encoder, decoder), the tokenizer as text, one manifest "
        "and golden vectors from the Python runtime.",
    )
    p.add_argument(
        "bundle", type=path_argument, help="ASR bundle written by `qwen-asr-edge export` or `quantize`"
    )
    p.add_argument("out", type=path_argument, help="mobile bundle folder to write")
    p.add_argument(
        "--format",
        choices=GRAPH_FORMATS,
        default="ort",
        help="graph files: ort (for ARM, default) or onnx (the .onnx graphs, for parity checks)",
    )
    p.add_argument(
        "--golden",
        nargs="+",
        type=path_argument,
        metavar="AUDIO",
        help="clips of at most 30 s for the golden vectors (default: the demo's english.wav and german.wav)",
    )
    p.add_argument("--force", action="store_true", help="replace OUT if it is a bundle already")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p.parse_args(argv)


def main(argv: list[str] | None = None, prog: str = "qwen-asr-edge android-pack") -> int:
    """``qwen-asr-edge android-pack``: progress on stderr, the mobile bundle's path on stdout.

    Args:
        argv: the arguments after the command name (default: ``sys.argv[1:]``).
        prog: the program name for usage lines.

    Returns:
        The exit code: 0, or 2 for a bad bundle, golden clip or existing OUT (one ``error:`` line).
    """
    args = parse_args(argv, prog)

    def body() -> int:
        path = pack_bundle(
            args.bundle, args.out, graph_format=args.format, golden=args.golden, force=args.force
        )
        print(path)
        return 0

    return run_command(body, debug=args.debug, progress=("qwen_asr_edge.android_bridge",))
