"""``qwen-asr-edge listen``: the default microphone (or --device) transcribed live, until Ctrl-C.

Needs the [mic] extra (sounddevice, which needs the PortAudio library: libportaudio2 on Debian).
"""

from __future__ import annotations

import argparse
import sys

from .cli import ModelResolver, add_model_options, add_session_options, check_model_options, load_transcriber
from .console import run_command
from .live import run_stream, views_for
from .sources import Microphone, import_sounddevice, list_devices


def parse_args(argv: list[str] | None = None, prog: str = "qwen-asr-edge listen") -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Transcribe a microphone live: committed text as it comes, the tentative tail in place "
        "on a terminal, one line per update to a pipe or file. Ctrl-C stops: the last words are decoded "
        "and printed, and the exit code is 0. Needs the [mic] extra (sounddevice, PortAudio).",
    )
    add_model_options(p)
    p.add_argument("--device", help="the input device: its index or a part of its name (see --list-devices)")
    p.add_argument("--list-devices", action="store_true", help="list the audio devices and stop")
    p.add_argument(
        "--format",
        "-f",
        choices=("txt", "json"),
        default="txt",
        help="json: one JSON object per update (committed, tentative, new_committed, language, end, "
        "is_final) (default: %(default)s)",
    )
    add_session_options(p)
    p.add_argument("--no-verify", action="store_true", help="skip checking the bundle files' sha256")
    p.add_argument("--debug", action="store_true", help="show tracebacks and the provider in use")
    args = p.parse_args(argv)
    check_model_options(p, args)
    return args


def listen(args: argparse.Namespace, resolve_model: ModelResolver | None = None) -> int:
    """Transcribe the input device live until Ctrl-C (or until the device goes away).

    Returns:
        The exit code: 0 (Ctrl-C is how listening ends).

    Raises:
        MissingDependencyError: sounddevice is not installed (the [mic] extra).
        InputError: no PortAudio library, no input device, no device matching --device, or a bad
            language or context.
        QwenAsrEdgeError: a bad bundle or model.
    """
    if args.list_devices:
        print(list_devices())
        return 0
    import_sounddevice()  # a missing extra or PortAudio, before any work
    # The model and the session before the device: a bad bundle, language or context is named as
    # such, not hidden behind the device's error on a machine without one.
    transcriber = load_transcriber(args, resolve_model)
    session = transcriber.stream(language=args.language, context=args.context)
    microphone = Microphone(args.device)
    views = views_for(True, args.format == "json", sys.stdout, sys.stderr)
    print(f"listening to {microphone.name} ({microphone.rate} Hz); Ctrl-C stops", file=sys.stderr)
    with microphone:
        run_stream(session, ((block, microphone.rate) for block in microphone), views)
    if microphone.overflows:
        print(
            f"note: the device lost audio {microphone.overflows} times (input overflow: the process was "
            "too busy to take it in time)",
            file=sys.stderr,
        )
    return 0


def main(
    argv: list[str] | None = None,
    prog: str = "qwen-asr-edge listen",
    resolve_model: ModelResolver | None = None,
) -> int:
    """``qwen-asr-edge listen``.

    Args:
        argv: the arguments after the command name (default: ``sys.argv[1:]``).
        prog: the program name for usage lines.
        resolve_model: turns ``--model CHECKPOINT`` into a bundle folder (the dispatcher passes
            ``qwen_asr_edge.models.cached_bundle``); without one, --model is an error.

    Returns:
        The exit code: 0, or 2 for a missing extra or library, no input device, a bad bundle,
        model or option.
    """
    args = parse_args(argv, prog)
    return run_command(lambda: listen(args, resolve_model), debug=args.debug)
