"""``qwen-asr-edge align AUDIO TEXT``: word start and end times for a known transcript."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import soundfile as sf

from .errors import QwenAsrEdgeError
from .results import Segment, Transcript
from .writers import get_writer

FORMATS = ("json", "tsv", "srt", "vtt")


def parse_args(argv: list[str] | None = None, prog: str = "qwen-asr-edge align") -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description="Time every word of a transcript in its audio.")
    p.add_argument("audio", type=Path, help="an audio file (at most the aligner's 180 s)")
    p.add_argument("text", help="the transcript, or - to read it from standard input")
    p.add_argument("--language", required=True, help="the transcript's language, e.g. English or Chinese")
    p.add_argument("--bundle", required=True, type=Path, help="a bundle exported with --aligner")
    p.add_argument(
        "--format",
        "-f",
        choices=FORMATS,
        default="json",
        help="json: [{text, start, end}]; tsv: start, end, word; srt and vtt: subtitle cues",
    )
    p.add_argument("--providers", default="auto", help="auto, cpu, cuda, dml, or onnxruntime provider names")
    p.add_argument("--no-verify", action="store_true", help="skip checking the bundle files' sha256")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p.parse_args(argv)


def main(argv: list[str] | None = None, prog: str = "qwen-asr-edge align") -> int:
    args = parse_args(argv, prog)
    logging.basicConfig(level=logging.INFO if args.debug else logging.WARNING, format="%(message)s")
    text = sys.stdin.read() if args.text == "-" else args.text
    try:
        from .aligner import Aligner

        aligner = Aligner(args.bundle, providers=args.providers, verify=not args.no_verify)
        words = aligner.align(args.audio, text, args.language)
    except QwenAsrEdgeError as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(
            json.dumps([{"text": w.text, "start": w.start, "end": w.end} for w in words], ensure_ascii=False)
        )
    elif args.format == "tsv":
        for w in words:
            print(f"{w.start:.3f}\t{w.end:.3f}\t{w.text}")
    else:
        duration = sf.info(str(args.audio)).duration
        segment = Segment(0.0, duration, text, args.language, words=words)
        transcript = Transcript(text, args.language, duration, [segment], source=str(args.audio))
        print(get_writer(args.format).format(transcript), end="")
    return 0
