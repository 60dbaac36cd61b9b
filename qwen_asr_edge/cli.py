"""The ``qwen-asr-edge`` command. Each subcommand lives with the part that does the work and is
imported only when asked for, so the runtime never loads torch."""

from __future__ import annotations

import importlib
import os
import sys

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
