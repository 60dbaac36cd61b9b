"""``qwen-asr-edge transcribe``: audio files in, text (or JSON) out."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from .audio import audio_files
from .bundle import RECIPE_NAMES
from .chunking import MIN_MAX_CHUNK_SECONDS
from .console import run_command
from .errors import AudioError, InputError
from .options import DEFAULTS, TranscriptionOptions
from .providers import OPTIMIZATION_LEVELS, SessionSettings
from .writers import WRITERS, get_writer


def parse_args(argv: list[str] | None = None, prog: str = "qwen-asr-edge transcribe") -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description="Transcribe audio files with an exported bundle.")
    p.add_argument("files", nargs="+", type=Path, help="audio files, or folders of them")
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--bundle",
        type=Path,
        help="bundle folder written by `qwen-asr-edge export` (default: the built-in demo model)",
    )
    source.add_argument(
        "--model",
        metavar="CHECKPOINT",
        help="a checkpoint's hub id (Qwen/Qwen3-ASR-0.6B) or folder: exported on first use (needs the "
        "[export] extra) and cached, see QWEN_ASR_EDGE_CACHE",
    )
    p.add_argument(
        "--recipe",
        choices=sorted(RECIPE_NAMES),
        help="with --model: quantize it so on first use (int4 for CPUs, fp16 for GPUs); default fp32",
    )
    p.add_argument(
        "--language", help="force the language: a name or ISO code (English, en, zh); detected when omitted"
    )
    p.add_argument(
        "--context", default="", help="context text or hot words, given to the model as the system turn"
    )
    p.add_argument(
        "--max-new-tokens",
        type=int,
        help="token cap per chunk (default: the language prefix, 4 tokens for Qwen3-ASR, "
        f"+ {DEFAULTS.tokens_per_second:g} per second of audio + the stop token)",
    )
    p.add_argument(
        "--format",
        "-f",
        choices=sorted(WRITERS),
        default="txt",
        help="srt, vtt and tsv are subtitle cues (default: %(default)s)",
    )
    p.add_argument(
        "--word-timestamps",
        "--timestamps",
        dest="word_timestamps",
        action="store_true",
        help="word times from the bundle's forced aligner (export --aligner); chunks are then at most 180 s",
    )
    p.add_argument("--output-dir", "-o", type=Path, help="write one file per input here instead of stdout")
    p.add_argument("--providers", default="auto", help="auto, cpu, cuda, dml, or onnxruntime provider names")
    p.add_argument("--threads", type=int, help="intra-op threads (default: the CPUs this process may use)")
    p.add_argument(
        "--optimization",
        choices=OPTIMIZATION_LEVELS,
        default="all",
        help="onnxruntime graph optimization level (default: all)",
    )
    p.add_argument(
        "--session-config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an onnxruntime session config entry, e.g. session.intra_op.allow_spinning=0 (repeatable)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULTS.batch_size,
        help="chunks decoded together (default: %(default)s)",
    )
    p.add_argument(
        "--max-chunk-seconds",
        type=float,
        default=DEFAULTS.max_chunk_seconds,
        help="cut longer recordings at quiet points into chunks of at most this, and at least 1 s "
        f"(at least {MIN_MAX_CHUNK_SECONDS:g}; default %(default)s; "
        "the official package uses 1200, and 180 with timestamps)",
    )
    p.add_argument("--no-verify", action="store_true", help="skip checking the bundle files' sha256")
    p.add_argument("--debug", action="store_true", help="show tracebacks and the provider in use")
    args = p.parse_args(argv)
    try:  # TranscriptionOptions checks its own values; the CLI names the option
        args.options = TranscriptionOptions(
            max_new_tokens=args.max_new_tokens,
            batch_size=args.batch_size,
            max_chunk_seconds=args.max_chunk_seconds,
            word_timestamps=args.word_timestamps,
            progress=True,
        )
    except ValueError as e:
        name, rest = str(e).split(" ", 1)
        p.error(f"--{name.replace('_', '-')} {rest}")
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be at least 1")
    if args.format in ("srt", "vtt", "tsv") and len(args.files) > 1 and not args.output_dir:
        p.error(f"--format {args.format} with several inputs needs --output-dir")
    if args.recipe and not args.model:
        p.error("--recipe goes with --model (a bundle is quantized with `qwen-asr-edge quantize`)")
    bad = [e for e in args.session_config if "=" not in e]
    if bad:
        p.error(f"--session-config takes KEY=VALUE, not {bad[0]!r}")
    return args


# Turns --model CHECKPOINT (and --recipe) into a bundle folder. Resolving needs the exporter, which
# the runtime never imports: the package's dispatcher injects qwen_asr_edge.models.cached_bundle.
ModelResolver = Callable[[str, "str | None"], Path]


def bundle_of(args: argparse.Namespace, resolve_model: ModelResolver | None = None) -> Path:
    """--bundle, else --model resolved by ``resolve_model``, else the demo model, said in one line.

    Raises:
        InputError: --model without a resolver (the runtime alone cannot export a checkpoint).
    """
    from . import demo

    if args.bundle is not None:
        return args.bundle
    if args.model is not None:
        if resolve_model is None:
            raise InputError(
                "--model needs the qwen-asr-edge command, which exports checkpoints; pass --bundle DIR"
            )
        return resolve_model(args.model, args.recipe)
    print(f"note: {demo.DEMO_NOTE}", file=sys.stderr)
    return demo.demo_bundle()


def run(args: argparse.Namespace, resolve_model: ModelResolver | None = None) -> int:
    """Transcribe ``args.files`` as parsed by :func:`parse_args`.

    Args:
        args: the parsed options.
        resolve_model: turns ``--model`` and ``--recipe`` into a bundle folder; None refuses --model.

    Returns:
        The exit code: 0, or 1 when some files could not be transcribed.

    Raises:
        QwenAsrEdgeError: a bad bundle, model or option (the CLI's ``main`` reports it in one line).
    """
    from .transcriber import Transcriber

    settings = SessionSettings(
        threads=args.threads,
        optimization=args.optimization,
        config=dict(e.split("=", 1) for e in args.session_config),
    )
    transcriber = Transcriber(
        bundle_of(args, resolve_model), providers=args.providers, verify=not args.no_verify, settings=settings
    )
    options = args.options
    inputs = audio_files(args.files)
    if not inputs:
        raise InputError(f"no audio files in {', '.join(map(str, args.files))}")
    files, wavs, failed = [], [], 0
    for path in inputs:
        try:
            wav = transcriber.prepare(path, options)  # long files stay paths, read a block at a time
        except AudioError as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
            continue
        files.append(path)
        wavs.append(wav)
    if files:
        results = transcriber.transcribe_batch(
            wavs,
            language=args.language,
            context=args.context,
            options=options,
            sources=[str(f) for f in files],
        )
        writer = get_writer(args.format)
        if args.output_dir:
            for f, r in zip(files, results, strict=True):
                writer.write(r, args.output_dir, f.stem)
        elif args.format == "json":
            print(json.dumps([r.to_dict() for r in results], ensure_ascii=False, indent=2))
        elif args.format != "txt":
            for r in results:
                print(writer.format(r), end="")
        else:
            for r in results:
                print(f"{r.source}: {r.text}" if len(inputs) > 1 else r.text)
    return 1 if failed else 0


def main(
    argv: list[str] | None = None,
    prog: str = "qwen-asr-edge transcribe",
    resolve_model: ModelResolver | None = None,
) -> int:
    """``qwen-asr-edge transcribe``.

    Args:
        argv: the arguments after the command name (default: ``sys.argv[1:]``).
        prog: the program name for usage lines.
        resolve_model: turns ``--model CHECKPOINT`` into a bundle folder (the dispatcher passes
            ``qwen_asr_edge.models.cached_bundle``); without one, --model is an error.

    Returns:
        The exit code: 0, 1 when some files failed, 2 for a bad bundle, model or option.
    """
    args = parse_args(argv, prog)
    return run_command(lambda: run(args, resolve_model), debug=args.debug)
