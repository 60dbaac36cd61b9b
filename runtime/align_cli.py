"""``qwen-asr-edge align AUDIO TEXT``: word start and end times for a known transcript."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .audio import describe, duration
from .console import path_argument, run_command
from .errors import InputError
from .prompt import normalize_language
from .results import Segment, Transcript
from .writers import get_writer

FORMATS = ("json", "tsv", "srt", "vtt")


def parse_args(argv: list[str] | None = None, prog: str = "qwen-asr-edge align") -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description="Time every word of a transcript in its audio.")
    p.add_argument("audio", type=Path, help="an audio file (at most the aligner's 180 s)")
    p.add_argument("text", help="the transcript, or - to read it from standard input")
    p.add_argument("--language", required=True, help="the transcript's language, e.g. English or Chinese")
    p.add_argument("--bundle", required=True, type=path_argument, help="a bundle exported with --aligner")
    p.add_argument(
        "--format",
        "-f",
        choices=FORMATS,
        default="json",
        help="json: transcribe's JSON, the words in its segment; srt, vtt and tsv: subtitle cues, "
        "as transcribe writes them",
    )
    p.add_argument("--providers", default="auto", help="auto, cpu, cuda, dml, or onnxruntime provider names")
    p.add_argument("--no-verify", action="store_true", help="skip checking the bundle files' sha256")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p.parse_args(argv)


def align(args: argparse.Namespace) -> int:
    """Align ``args.text`` to ``args.audio`` and print it in ``args.format``, through the same
    writers as ``transcribe`` (one segment spanning the file, holding the words).

    Returns:
        The exit code, 0.

    Raises:
        QwenAsrEdgeError: a bad bundle, audio file, language or text.
    """
    from .aligner import Aligner

    try:
        text = sys.stdin.read() if args.text == "-" else args.text
    except UnicodeDecodeError:
        raise InputError("the transcript on stdin is not valid UTF-8 text") from None
    aligner = Aligner(args.bundle, providers=args.providers, verify=not args.no_verify)
    words = aligner.align(args.audio, text, args.language)
    language = normalize_language(args.language, aligner.languages)  # "english" -> "English"
    seconds = duration(args.audio)
    segment = Segment(0.0, seconds, text, language, words=words)
    transcript = Transcript.of([segment], seconds, source=describe(args.audio))
    print(get_writer(args.format).format(transcript), end="")
    return 0


def main(argv: list[str] | None = None, prog: str = "qwen-asr-edge align") -> int:
    """``qwen-asr-edge align``.

    Args:
        argv: the arguments after the command name (default: ``sys.argv[1:]``).
        prog: the program name for usage lines.

    Returns:
        The exit code: 0, or 2 for a bad bundle, audio file, language or text.
    """
    args = parse_args(argv, prog)
    return run_command(lambda: align(args), debug=args.debug)
