"""The ``qwen-asr-edge`` command. Each subcommand lives with the part that does the work and is
imported only when asked for, so the runtime never loads torch."""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from qwen_asr_edge import __version__

COMMANDS = {
    "transcribe": ("qwen_asr_edge.runtime.cli", "transcribe audio files, or a stream, with a bundle"),
    "transcribe-many": ("qwen_asr_edge.runtime.batch", "an archive on Ray Data, resumable (needs [ray])"),
    "listen": ("qwen_asr_edge.runtime.listen_cli", "transcribe a microphone live (needs the [mic] extra)"),
    "serve": (
        "qwen_asr_edge.runtime.serve_cli",
        "serve OpenAI's transcription API and realtime socket locally (needs [server])",
    ),
    "align": ("qwen_asr_edge.runtime.align_cli", "time every word of a known transcript (aligner bundles)"),
    "export": ("qwen_asr_edge.export.cli", "export a checkpoint to a bundle (needs the [export] extra)"),
    "quantize": (
        "qwen_asr_edge.quant.cli",
        "quantize a bundle: int8, int4, int4-gptq, fp16 (needs [export])",
    ),
    "android-pack": (
        "qwen_asr_edge.android_bridge.cli",
        "a mobile bundle for Android/JVM apps: .ort graphs, golden vectors (needs [export])",
    ),
}


def usage() -> str:
    lines = ["usage: qwen-asr-edge [--version] COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<17}{about}" for name, (_, about) in COMMANDS.items()]
    lines += ["", "Run `qwen-asr-edge COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run ``qwen-asr-edge ARGV``; returns the exit code."""
    if sys.stderr is None:  # started with stderr closed (2>&-): print(file=None) would go to stdout
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    previous = _terminate_as_interrupt()
    try:
        return _dispatch(sys.argv[1:] if argv is None else argv)
    except BrokenPipeError:
        # The reader went away (`qwen-asr-edge ... | head`): stop quietly, as Python's docs advise
        # (signal module, "Note on SIGPIPE"), with stdout pointed at devnull so the interpreter's
        # final flush cannot raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:  # Ctrl-C before a command took over (while loading, say)
        print("error: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:  # main() called in-process (tests, an app) leaves no trace
            signal.signal(signal.SIGTERM, previous)


def _terminate_as_interrupt() -> Callable[[int, FrameType | None], Any] | int | None:
    """Handle SIGTERM (``kill``, a service manager's stop, a job's timeout) as Ctrl-C: each command
    already finishes what Ctrl-C should finish (a stream's text so far, other files' results, no
    half-written bundle), and Python's default for SIGTERM is to die at once without any of it. The
    SIGINT handler current at that moment is called, so whatever a command made of Ctrl-C it makes
    of SIGTERM too (where SIGINT is ignored, as in a script's background job, SIGTERM still
    interrupts). Work that must not be cut in two holds both meanwhile (runtime/signals.py).
    `serve` installs its own (uvicorn's graceful stop); `transcribe-many` puts this one back after
    ray.init replaces it. Returns the handler replaced (as ``signal.signal``), or None where none
    was: off the main thread (`signal` allows it only there) or beside an embedding app's own
    SIGTERM handler, which stays."""

    def handler(signum: int, frame) -> None:
        interrupt = signal.getsignal(signal.SIGINT)
        if callable(interrupt):  # Python's own (raises KeyboardInterrupt) or one that defers it
            interrupt(signal.SIGINT, frame)
            return
        # SIGINT ignored (a background job of a script, `cmd &`) or at its C default: SIGTERM
        # must still stop the command, so as Python's own Ctrl-C handler would.
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        return None
    return signal.signal(signal.SIGTERM, handler)


def _dispatch(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] == "--version":
        print(f"qwen-asr-edge {__version__}")
        return 0
    command = COMMANDS.get(argv[0])
    if command is None:
        print(f"error: unknown command {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(command[0])
    options = {}
    if argv[0] in (
        "transcribe",
        "listen",
        "serve",
    ):  # --model resolution joins export and runtime, so it lives up here
        from qwen_asr_edge.models import cached_bundle

        options["resolve_model"] = cached_bundle
    return module.main(argv[1:], prog=f"qwen-asr-edge {argv[0]}", **options)
