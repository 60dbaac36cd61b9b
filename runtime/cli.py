"""``qwen-asr-edge transcribe``: audio files in, text (or JSON) out; or one stream (standard input,
a FIFO, a device, or a file with --live / --simulate-live) through a streaming session, its text
shown as it comes (live.py, sources.py)."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

from .audio import Skipped, audio_files, describe
from .bundle import RECIPE_NAMES, Bundle
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
from .sources import (
    RAW_FORMATS,
    STDIN,
    RawFormat,
    file_blocks,
    is_stream,
    open_stream,
    raw_encoding,
    stream_name,
)
from .streaming import StreamingOptions
from .vad import VadOptions, check_available
from .writers import WRITERS, get_writer

# More intra-op threads than this only oversubscribes any machine (and 100000 hangs session creation).
MAX_THREADS = 1024


def parse_args(argv: list[str] | None = None, prog: str = "qwen-asr-edge transcribe") -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Transcribe audio files with an exported bundle, or one live stream.",
        epilog=STREAMS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "files",
        nargs="+",
        type=_input_path,
        help="audio or video files, or folders of them; or one stream: - (standard input), a FIFO, a device",
    )
    p.add_argument(
        "--recursive", "-r", action="store_true", help="also transcribe what is in sub-folders of a folder"
    )
    add_model_options(p)
    p.add_argument(
        "--format",
        "-f",
        choices=sorted(WRITERS),
        default="txt",
        help="srt, vtt and tsv are subtitle cues (default: %(default)s)",
    )
    p.add_argument(
        "--output-dir",
        "-o",
        type=path_argument,
        help="write one file per input here instead of stdout (inputs whose names clash keep more of "
        "their name: clip.wav.txt, clip.flac.txt; a/take.txt, b/take.txt)",
    )
    p.add_argument("--force", action="store_true", help="replace output files that exist")
    add_session_options(p)
    p.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULTS.batch_size,
        help="chunks decoded together (default: %(default)s)",
    )
    add_decoding_options(p)
    live = p.add_argument_group("streams (see below)")
    live.add_argument(
        "--live",
        action="store_true",
        help="print the text as it is committed: in place with the tentative tail on a terminal, one line "
        "per update to a pipe or file (JSON lines with -f json); a file is then streamed",
    )
    live.add_argument(
        "--simulate-live",
        nargs="?",
        const=1.0,
        type=_speed,
        metavar="SPEED",
        help="stream a file through a live session in blocks, at SPEED times real time (default 1; 0: as "
        "fast as it decodes); write --simulate-live=SPEED before a file name",
    )
    live.add_argument(
        "--raw-format",
        type=raw_encoding,
        choices=list(RAW_FORMATS),
        metavar="ENCODING",
        help=f"the stream is headerless PCM: {', '.join(RAW_FORMATS)}, or arecord's names (S16_LE); "
        "with --sample-rate and --channels",
    )
    live.add_argument(
        "--sample-rate", type=int, metavar="HZ", help=f"with --raw-format (default {RawFormat.sample_rate})"
    )
    live.add_argument(
        "--channels",
        type=int,
        metavar="N",
        help=f"with --raw-format, interleaved (default {RawFormat.channels})",
    )
    p.add_argument("--no-verify", action="store_true", help="skip checking the bundle files' sha256")
    p.add_argument("--debug", action="store_true", help="show tracebacks and the provider in use")
    args = _parse_intermixed(p, argv)  # files may come after options too
    _check_stream_options(p, args)
    args.options = decoding_options(p, args, progress=True)
    check_model_options(p, args)
    return args


def add_decoding_options(p: argparse.ArgumentParser) -> None:
    """How files transcribed whole are decoded: --max-new-tokens, --no-repetition-guard,
    --word-timestamps, --max-chunk-seconds, --vad and --vad-threshold (transcribe and
    transcribe-many share them; ``decoding_options`` reads them)."""
    g = p.add_argument_group("decoding")
    g.add_argument(
        "--max-new-tokens",
        type=int,
        help="token cap per chunk (default: the language prefix, 4 tokens for Qwen3-ASR, "
        f"+ {DEFAULTS.tokens_per_second:g} per second of audio + the stop token)",
    )
    g.add_argument(
        "--no-repetition-guard",
        dest="repetition_guard",
        action="store_false",
        help="decode a chunk whose output loops ('the the the ...') to its token cap, as the official "
        "package does, instead of stopping at the loop (finish_reason 'repetition') with one copy kept",
    )
    g.add_argument(
        "--word-timestamps",
        "--timestamps",
        dest="word_timestamps",
        action="store_true",
        help="word times from the bundle's forced aligner (export --aligner); chunks are then at most 180 s",
    )
    g.add_argument(
        "--max-chunk-seconds",
        type=float,
        default=DEFAULTS.max_chunk_seconds,
        help="cut longer recordings at quiet points into chunks of at most this, and at least 1 s "
        f"(at least {MIN_MAX_CHUNK_SECONDS:g}; default %(default)s; "
        "the official package uses 1200, and 180 with timestamps)",
    )
    g.add_argument(
        "--vad",
        dest="vad_filter",
        action="store_true",
        help="decode only the speech silero VAD finds (as faster-whisper's vad_filter): silence, noise and "
        "tones give no text, chunks are cut at speech pauses; needs the [vad] extra",
    )
    g.add_argument(
        "--vad-threshold",
        type=float,
        metavar="P",
        help=f"with --vad: the speech probability from which a 32 ms window is speech "
        f"(default {VadOptions.threshold})",
    )


def decoding_options(
    p: argparse.ArgumentParser, args: argparse.Namespace, progress: bool
) -> TranscriptionOptions:
    """The TranscriptionOptions of ``add_decoding_options``' options and --batch-size; a bad value
    is a usage error naming the option (exits with code 2)."""
    vad_parameters = _vad_parameters(p, args)
    try:  # TranscriptionOptions checks its own values; the CLI names the option
        return TranscriptionOptions(
            max_new_tokens=args.max_new_tokens,
            batch_size=args.batch_size,
            max_chunk_seconds=args.max_chunk_seconds,
            word_timestamps=args.word_timestamps,
            repetition_guard=DEFAULTS.repetition_guard if args.repetition_guard else None,
            progress=progress,
            vad_filter=args.vad_filter,
            vad_parameters=vad_parameters,
        )
    except ValueError as e:
        name, rest = str(e).split(" ", 1)
        p.error(f"--{name.replace('_', '-')} {rest}")


def check_decoding(bundle: Bundle, options: TranscriptionOptions, demo: bool) -> None:
    """Options that would fail every input, refused before any work: --vad without its package,
    --word-timestamps with a bundle that holds no aligner (``demo``: the built-in demo model's,
    said so).

    Raises:
        MissingDependencyError: the [vad] extra is not installed.
        InputError: the demo model and --word-timestamps.
        BundleError: another bundle without an aligner.
    """
    if options.vad_filter:
        check_available()
    if options.word_timestamps and bundle.manifest.aligner is None:
        if demo:
            raise InputError(
                "--word-timestamps needs a forced aligner, which the built-in demo model lacks: pass "
                "--bundle DIR of a bundle exported with --aligner Qwen/Qwen3-ForcedAligner-0.6B"
            )
        raise BundleError(
            bundle.path, "holds no aligner", "export it with --aligner Qwen/Qwen3-ForcedAligner-0.6B"
        )


def add_model_options(p: argparse.ArgumentParser) -> None:
    """--bundle or --model (with --recipe), --language and --context: what transcribe and listen share."""
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


def add_session_options(p: argparse.ArgumentParser) -> None:
    """--providers, --threads, --optimization and --session-config (onnxruntime's settings)."""
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
        help="an onnxruntime session config entry, e.g. session.intra_op.allow_spinning=0 (repeatable; "
        "onnxruntime takes any key and ignores those it does not know)",
    )


def check_model_options(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage errors in the options of ``add_model_options`` and ``add_session_options``."""
    if args.threads is not None and not 1 <= args.threads <= MAX_THREADS:
        p.error(f"--threads must be between 1 and {MAX_THREADS}")
    if args.recipe and not args.model:
        p.error("--recipe goes with --model (a bundle is quantized with `qwen-asr-edge quantize`)")
    bad = [e for e in args.session_config if "=" not in e]
    if bad:
        p.error(f"--session-config takes KEY=VALUE, not {bad[0]!r}")
    try:
        SessionSettings(config=session_config(args))
    except ValueError as e:
        p.error(f"--session-config: {e}")


def session_config(args: argparse.Namespace) -> dict[str, str]:
    """--session-config KEY=VALUE entries as a dict (the last of a key given twice wins)."""
    return dict(e.split("=", 1) for e in args.session_config)


def load_transcriber(args: argparse.Namespace, resolve_model: ModelResolver | None = None):
    """The Transcriber the options of ``add_model_options`` and ``add_session_options`` ask for.

    Raises:
        QwenAsrEdgeError: a bad bundle or model, an unavailable provider.
    """
    from .transcriber import Transcriber

    settings = SessionSettings(
        threads=args.threads,
        optimization=args.optimization,
        config=session_config(args),
    )
    return Transcriber(
        bundle_of(args, resolve_model), providers=args.providers, verify=not args.no_verify, settings=settings
    )


STREAMS_HELP = """\
streams:
  A stream given alone is transcribed through a live session (2 s steps; committed text never
  changes, the tentative tail may): - (standard input), a FIFO or a character device, read as
  the audio arrives, or a file with --live or --simulate-live. Pipes carry WAV, AIFF, AU or OGG
  (sox in.wav -t wav - | qwen-asr-edge transcribe - --live), or headerless PCM with --raw-format
  (arecord -t raw -f S16_LE -r 16000 | qwen-asr-edge transcribe - --raw-format s16le); with the
  [media] extra also FLAC, MP3, AAC, Matroska and WebM (FFmpeg). Without --live the transcript is
  printed at the end in --format, with the text shown live on stderr when that is a terminal.
  Ctrl-C stops reading: the text so far is finished and printed, and the exit code is 130 (the
  input did not end).
"""


def _speed(text: str) -> float:
    """--simulate-live SPEED: a finite number >= 0."""
    try:
        speed = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"SPEED must be a number (1: real time, 0: as fast as possible), not {text!r}; "
            "write --simulate-live=SPEED, or put it after the file names"
        ) from None
    if not (speed >= 0 and math.isfinite(speed)):
        raise argparse.ArgumentTypeError(f"SPEED must be 0 or a positive number, not {text!r}")
    return speed


def _check_stream_options(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Stream options that contradict each other or the offline ones are usage errors; builds
    ``args.raw`` (a RawFormat, or None)."""
    args.raw = None
    if args.raw_format is None:
        for given, flag in ((args.sample_rate, "--sample-rate"), (args.channels, "--channels")):
            if given is not None:
                p.error(f"{flag} describes headerless PCM: it goes with --raw-format")
    else:
        try:
            args.raw = RawFormat(
                args.raw_format,
                RawFormat.sample_rate if args.sample_rate is None else args.sample_rate,
                RawFormat.channels if args.channels is None else args.channels,
            )
        except InputError as e:
            p.error(str(e))
    if args.live and args.format in ("srt", "vtt", "tsv"):
        p.error(f"--live prints text or JSON lines, not --format {args.format} (leave out --live)")


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


def _parse_intermixed(p: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``parse_intermixed_args``, with the files after ``--`` however the line starts: CPython's
    intermixed parse refuses ``transcribe -- -take.wav`` ("the following arguments are required")
    when no file comes before the ``--``, so one is put first and taken out again."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--" not in argv:
        return p.parse_intermixed_args(argv)
    args = p.parse_intermixed_args([_FIRST, *argv])
    args.files = args.files[1:]
    if not args.files:
        p.error("the following arguments are required: files")
    return args


_FIRST = "\0first"  # a name no real file has (NUL)


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
    """Transcribe ``args.files`` as parsed by :func:`parse_args` (one stream, or --live or
    --simulate-live: :func:`transcribe_stream`).

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

    if _is_streamed(args):
        return transcribe_stream(args, resolve_model)
    if args.raw is not None:
        raise InputError(
            "--raw-format is for a stream (-, a FIFO, a device); for a file of headerless PCM, pipe it: "
            "qwen-asr-edge transcribe - --raw-format ... < FILE"
        )
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
    transcriber = load_transcriber(args, resolve_model)
    options = args.options
    # Options that would fail every input fail now, before any work: the language, the context,
    # the VAD's package, the aligner that word timestamps need, the chunk's positions.
    transcriber.prompt_ids(1, args.context, args.language)
    check_decoding(transcriber.bundle, options, demo=args.bundle is None and args.model is None)
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
            transcribe_all(transcriber, inputs, args, results)
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


def _is_streamed(args: argparse.Namespace) -> bool:
    """A stream given alone, or --live / --simulate-live. A FIFO or device among other inputs is
    refused as before (audio.py: "not a regular file"), and ``-`` among them is a usage error."""
    if args.live or args.simulate_live is not None:
        return True
    if len(args.files) == 1:
        return is_stream(args.files[0])
    if any(os.fspath(f) == STDIN for f in args.files):
        raise InputError("- (standard input) is a stream, transcribed on its own: give it as the only input")
    return False


# Options of whole-file transcription that a streaming session has no use for: (attribute, flag).
_OFFLINE_ONLY = (
    ("word_timestamps", "--word-timestamps"),
    ("vad_filter", "--vad"),
    ("max_new_tokens", "--max-new-tokens"),
    ("recursive", "--recursive"),
)


def _check_stream(args: argparse.Namespace) -> Path:
    """The one input of a stream, its options checked.

    Raises:
        InputError: several inputs, a folder, an option that streams do not take.
    """
    if len(args.files) != 1:
        raise InputError(
            "a stream is transcribed on its own: give one input with --live or --simulate-live, or one "
            "stream (-, a FIFO, a device)"
        )
    path = args.files[0]
    stream = is_stream(path)
    if path.is_dir():
        raise InputError(f"{display_name(path)}: --live and --simulate-live stream one file, not a folder")
    if stream and args.simulate_live is not None:
        raise InputError(f"--simulate-live paces a file; {stream_name(path)} comes at its own pace")
    if not stream and args.raw is not None:
        raise InputError(
            f"--raw-format is for a stream (-, a FIFO, a device), not the file {display_name(path)}"
        )
    for attribute, flag in _OFFLINE_ONLY:
        if getattr(args, attribute) not in (None, False):
            raise InputError(f"{flag} is for files transcribed whole, not for streams")
    defaults = (("batch_size", "--batch-size"), ("max_chunk_seconds", "--max-chunk-seconds"))
    for attribute, flag in defaults:
        if getattr(args, attribute) != getattr(DEFAULTS, attribute):
            raise InputError(f"{flag} is for files transcribed whole, not for streams")
    if args.output_dir is not None:
        raise InputError(
            "a stream's transcript goes to stdout (redirect it: > FILE); --output-dir is for files"
        )
    if sys.stdout is None:
        raise InputError("stdout is closed: a stream's transcript goes to stdout")
    return path


def transcribe_stream(args: argparse.Namespace, resolve_model: ModelResolver | None = None) -> int:
    """Transcribe the one stream of ``args`` through a streaming session, showing its text as it
    comes (live.py): ``-``, a FIFO or a device read as it arrives, or a file with ``--live`` (as
    fast as it decodes) or ``--simulate-live SPEED``.

    Returns:
        The exit code: 0; 1 when the input could not be read (an error line, and the transcript
        of what came before, if anything did); 130 on Ctrl-C (the transcript of the audio so far).

    Raises:
        QwenAsrEdgeError: a bad option, bundle, model, language or context, before any audio is read.
    """
    from .live import run_stream, stream_transcript, views_for

    path = _check_stream(args)
    transcriber = load_transcriber(args, resolve_model)
    guard = DEFAULTS.repetition_guard if args.repetition_guard else None
    session = transcriber.stream(
        language=args.language, context=args.context, options=StreamingOptions(repetition_guard=guard)
    )
    if is_stream(path):
        source = open_stream(path, args.raw)
        blocks = ((block, source.rate) for block in source)
        name = source.name
    else:
        speed = 0.0 if args.simulate_live is None else args.simulate_live
        blocks = file_blocks(path, speed=speed, sample_rate=transcriber.sample_rate)
        name = display_name(path)
    views = views_for(args.live, args.format == "json", sys.stdout, sys.stderr)
    try:
        outcome = run_stream(session, blocks, views, sample_rate=transcriber.sample_rate)
    except (AudioError, MissingDependencyError) as e:  # nothing came: the input is not audio, say
        print(f"error: {e}", file=sys.stderr)
        return 1
    final = outcome.final
    nothing = outcome.error is not None and final.end == 0  # it failed on its first block
    if not args.live and not nothing:
        transcript = stream_transcript(final, name, transcriber.provider, transcriber.precision)
        results = Delivery(
            [path], get_writer(args.format), None, several=False, as_json=args.format == "json"
        )
        results.finished(0, transcript)
        results.close()
    if outcome.error is not None:  # named as the input (the session calls its audio "stream")
        problem = f"{name}: {outcome.error.problem}"
        if not nothing:
            problem += f"; the transcript covers the {final.end:.1f} s before"
        print(f"error: {problem}", file=sys.stderr)
        return 1
    if outcome.interrupted:
        print(f"error: interrupted; transcribed the first {final.end:.1f} s of {name}", file=sys.stderr)
        if is_stream(path):
            # Its reader thread may still be blocked reading the pipe, in libsndfile: letting the
            # interpreter finalize under it crashed (SIGSEGV) about one exit in five. Everything
            # is printed; nothing is written to files for streams.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        return 130
    return 0


def _folders_without_audio(arguments: list[Path], found: list[Path]) -> list[Path]:
    """The folders among ``arguments`` that gave no file to transcribe."""
    folders = [a for a in arguments if a.is_dir()]
    return [d for d in folders if not any(f.is_relative_to(d) for f in found)]


def transcribe_all(transcriber, inputs: list[Path], args: argparse.Namespace, results: Delivery) -> None:
    """Transcribe files as ``transcribe`` does (and ``transcribe-many``'s actors, batch.py): every
    input checked by its header first; then the short ones decoded together, then each long one
    read a block at a time; each outcome handed to ``results`` (``finished(i, transcript)`` or
    ``failed(i, error)``) as soon as it is known. A failure costs its own input only.

    Args:
        args: The parsed options (``options``, ``language``, ``context``, ``debug``).
    """
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
    noted: set[str] = set()
    out = []
    for p in paths:
        key = os.path.realpath(p)
        if key in seen:
            if key not in noted:  # one note however many times
                noted.add(key)
                said = f"note: {display_name(p)} is given more than once; transcribing it once"
                print(said, file=sys.stderr)
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
