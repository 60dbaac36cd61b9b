"""``qwen-asr-edge transcribe``: audio files in, text (or JSON) out."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from .audio import Skipped, audio_files, describe
from .bundle import RECIPE_NAMES
from .chunking import MIN_MAX_CHUNK_SECONDS
from .console import path_argument, run_command
from .delivery import Delivery, first_missing, remove_empty_folders
from .errors import (
    AudioError,
    BundleError,
    InputError,
    MissingDependencyError,
    OutputError,
    display_name,
)
from .options import DEFAULTS, TranscriptionOptions
from .outputs import plan_outputs
from .providers import OPTIMIZATION_LEVELS, SessionSettings
from .results import Transcript
from .vad import VadOptions, check_available
from .writers import WRITERS, get_writer

# More intra-op threads than this only oversubscribes any machine (and 100000 hangs session creation).
MAX_THREADS = 1024


def parse_args(argv: list[str] | None = None, prog: str = "qwen-asr-edge transcribe") -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description="Transcribe audio files with an exported bundle.")
    p.add_argument("files", nargs="+", type=_input_path, help="audio or video files, or folders of them")
    p.add_argument(
        "--recursive", "-r", action="store_true", help="also transcribe what is in sub-folders of a folder"
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--bundle",
        type=path_argument,
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
    p.add_argument(
        "--output-dir",
        "-o",
        type=path_argument,
        help="write one file per input here instead of stdout (inputs whose names clash keep more of "
        "their name: clip.wav.txt, clip.flac.txt; a/take.txt, b/take.txt)",
    )
    p.add_argument("--force", action="store_true", help="replace output files that exist")
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
    p.add_argument(
        "--vad",
        dest="vad_filter",
        action="store_true",
        help="decode only the speech silero VAD finds (as faster-whisper's vad_filter): silence, noise and "
        "tones give no text, chunks are cut at speech pauses; needs the [vad] extra",
    )
    p.add_argument(
        "--vad-threshold",
        type=float,
        metavar="P",
        help=f"with --vad: the speech probability from which a 32 ms window is speech "
        f"(default {VadOptions.threshold})",
    )
    p.add_argument("--no-verify", action="store_true", help="skip checking the bundle files' sha256")
    p.add_argument("--debug", action="store_true", help="show tracebacks and the provider in use")
    args = p.parse_intermixed_args(argv)  # files may come after options too
    vad_parameters = _vad_parameters(p, args)
    try:  # TranscriptionOptions checks its own values; the CLI names the option
        args.options = TranscriptionOptions(
            max_new_tokens=args.max_new_tokens,
            batch_size=args.batch_size,
            max_chunk_seconds=args.max_chunk_seconds,
            word_timestamps=args.word_timestamps,
            progress=True,
            vad_filter=args.vad_filter,
            vad_parameters=vad_parameters,
        )
    except ValueError as e:
        name, rest = str(e).split(" ", 1)
        p.error(f"--{name.replace('_', '-')} {rest}")
    if args.threads is not None and not 1 <= args.threads <= MAX_THREADS:
        p.error(f"--threads must be between 1 and {MAX_THREADS}")
    if args.recipe and not args.model:
        p.error("--recipe goes with --model (a bundle is quantized with `qwen-asr-edge quantize`)")
    bad = [e for e in args.session_config if "=" not in e]
    if bad:
        p.error(f"--session-config takes KEY=VALUE, not {bad[0]!r}")
    return args


def _vad_parameters(p: argparse.ArgumentParser, args: argparse.Namespace) -> VadOptions | None:
    """VadOptions from --vad-threshold, None for the defaults; a bad value is a usage error."""
    if args.vad_threshold is None:
        return None
    if not args.vad_filter:
        p.error("--vad-threshold goes with --vad")
    try:
        return VadOptions(threshold=args.vad_threshold)
    except ValueError as e:
        p.error(f"--vad-{e}")


def _input_path(text: str) -> Path:
    """A FILES argument; an empty one is refused (an unset shell variable), never taken as "." (the
    current folder, which is what Path("") means)."""
    if not text:
        raise argparse.ArgumentTypeError("an empty file name (an unset shell variable?)")
    return Path(text)


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


# More skipped entries than this are summed up in one line.
MAX_SKIP_NOTES = 5


def report_skipped(skipped: list[Skipped]) -> None:
    """One ``note:`` line on stderr per entry a folder skipped, or one line for many."""
    if len(skipped) <= MAX_SKIP_NOTES:
        for s in skipped:
            print(f"note: {display_name(s.path)}: skipped: {s.reason}", file=sys.stderr)
        return
    examples = "; ".join(f"{display_name(s.path)}: {s.reason}" for s in skipped[:3])
    print(f"note: skipped {len(skipped)} entries of the folders given, e.g. {examples}", file=sys.stderr)


def run(args: argparse.Namespace, resolve_model: ModelResolver | None = None) -> int:
    """Transcribe ``args.files`` as parsed by :func:`parse_args`.

    Every output is planned and checked before any work (``outputs.plan_outputs``); every input is
    checked by its header before decoding starts; a file that fails, even one read a block at a
    time that fails an hour in, costs only its own result. Results are written (or printed) in
    input order as soon as they and the ones before them are finished.

    Args:
        args: the parsed options.
        resolve_model: turns ``--model`` and ``--recipe`` into a bundle folder; None refuses --model.

    Returns:
        The exit code: 0, or 1 when some inputs could not be transcribed or written.

    Raises:
        QwenAsrEdgeError: a bad bundle, model, option or output folder (the CLI's ``main`` reports
            it in one line), before any input is decoded.
    """
    from .transcriber import Transcriber

    found, skipped = audio_files(args.files, recursive=args.recursive)
    report_skipped(skipped)
    inputs = _each_once(found)
    if not inputs:
        raise InputError(f"no audio files in {', '.join(map(display_name, args.files))}")
    empty = _folders_without_audio(args.files, found)
    if args.format in ("srt", "vtt", "tsv") and len(inputs) > 1 and not args.output_dir:
        raise InputError(f"--format {args.format} with several inputs needs --output-dir")
    if args.output_dir is None and sys.stdout is None:
        raise InputError("stdout is closed: pass --output-dir to write the transcripts to files")
    writer = get_writer(args.format)
    targets = None
    created = first_missing(args.output_dir) if args.output_dir is not None else None
    if args.output_dir is not None:
        targets = plan_outputs(inputs, args.output_dir, writer.extension, force=args.force)
    settings = SessionSettings(
        threads=args.threads,
        optimization=args.optimization,
        config=dict(e.split("=", 1) for e in args.session_config),
    )
    transcriber = Transcriber(
        bundle_of(args, resolve_model), providers=args.providers, verify=not args.no_verify, settings=settings
    )
    options = args.options
    # Options that would fail every input fail now, before any work: the language, the context,
    # the VAD's package, and the aligner that word timestamps need.
    transcriber.prompt_ids(1, args.context, args.language)
    if options.vad_filter:
        check_available()
    if options.word_timestamps:
        try:
            _ = transcriber.aligner
        except BundleError:
            if args.bundle is None and args.model is None:
                raise InputError(
                    "--word-timestamps needs a forced aligner, which the built-in demo model lacks: pass "
                    "--bundle DIR of a bundle exported with --aligner Qwen/Qwen3-ForcedAligner-0.6B"
                ) from None
            raise
    transcriber.check_options(options, args.context)
    results = Delivery(
        inputs, writer, targets, several=len(inputs) > 1, as_json=args.format == "json", force=args.force
    )
    for folder in empty:  # a folder given among other inputs that held nothing to transcribe
        print(f"error: {display_name(folder)}: no audio files in it", file=sys.stderr)
        results.problems += 1
    code = 0
    try:
        try:
            _transcribe_all(transcriber, inputs, args, results)
        except KeyboardInterrupt:
            print(f"error: interrupted; {results.emitted} of {len(inputs)} inputs finished", file=sys.stderr)
            code = 130
        results.close()
    except OutputError as e:  # stdout itself failed (a full disk behind >): nowhere left to put results
        print(f"error: {e}", file=sys.stderr)
        code = code or 1
    finally:
        if created is not None and results.written == 0:  # all failed: leave no empty folders behind
            remove_empty_folders(created)
    return code or (1 if results.problems else 0)


def _folders_without_audio(arguments: list[Path], found: list[Path]) -> list[Path]:
    """The folders among ``arguments`` that gave no file to transcribe."""
    folders = [a for a in arguments if a.is_dir()]
    return [d for d in folders if not any(f.is_relative_to(d) for f in found)]


def _transcribe_all(transcriber, inputs: list[Path], args: argparse.Namespace, results: Delivery) -> None:
    """Every input checked by its header first; then the short ones decoded together, then each
    long one read a block at a time; each outcome handed to ``results`` as soon as it is known."""
    options = args.options
    kwargs = {"language": args.language, "context": args.context, "options": options}

    def attempt(i: int, work: Callable[[], Transcript]) -> None:
        try:
            transcript = work()
        except Exception as e:  # one input's fault, even a bug, costs that input only
            if args.debug and not isinstance(e, (AudioError, MissingDependencyError)):
                raise
            results.failed(i, e)
        else:  # outside the try: a closed pipe or a full stdout is no fault of this input
            results.finished(i, transcript)

    prepared: dict[int, object] = {}
    for i, path in enumerate(inputs):
        try:
            prepared[i] = transcriber.prepare(path, options)  # long files stay paths, read a block at a time
        except Exception as e:  # e.g. a file that needs the [media] extra; or a bug reading one file
            if args.debug and not isinstance(e, (AudioError, MissingDependencyError)):
                raise
            results.failed(i, e)
    decoded = [i for i, audio in prepared.items() if not isinstance(audio, Path)]
    try:  # the short files in one call, so chunks of similar length decode together
        transcripts = (
            transcriber.transcribe_batch(
                [prepared[i] for i in decoded], sources=[describe(inputs[i]) for i in decoded], **kwargs
            )
            if decoded
            else []
        )
    except Exception:  # find which file it was: each on its own
        if args.debug:
            raise
        for i in decoded:
            attempt(i, lambda i=i: transcriber.transcribe(prepared[i], **kwargs))
    else:
        for i, transcript in zip(decoded, transcripts, strict=True):
            results.finished(i, transcript)
    for i in (i for i, audio in prepared.items() if isinstance(audio, Path)):
        # one long file at a time: a fault an hour in loses that file only
        attempt(i, lambda i=i: transcriber.transcribe(prepared[i], **kwargs))


def _each_once(paths: list[Path]) -> list[Path]:
    """The inputs with repeats dropped (the same file named twice, or through a folder and by name),
    so it is transcribed once and has one output."""
    seen: set[str] = set()
    out = []
    for p in paths:
        key = os.path.realpath(p)
        if key in seen:
            print(f"note: {display_name(p)} is given more than once; transcribing it once", file=sys.stderr)
            continue
        seen.add(key)
        out.append(p)
    return out


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
