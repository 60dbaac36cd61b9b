"""What every ``qwen-asr-edge`` command does around its work: log the package's messages to stderr,
turn the package's errors into one ``error: ...`` line and exit code 2, and show tracebacks with
``--debug``. Here, in the lowest layer, so transcribe, align, export and quantize share it.

Only the package's own logger (``qwen_asr_edge``) is configured, and only for the duration of the
command: never the root logger, never another library's (an application embedding us keeps its
logging as it was).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from .errors import QwenAsrEdgeError

PACKAGE_LOGGER = "qwen_asr_edge"


def path_argument(value: str) -> Path:
    """argparse ``type=`` for paths: an empty one (an unset ``$VAR``) is refused, not read as
    the current folder."""
    if not value.strip():
        raise argparse.ArgumentTypeError("an empty path (an unset variable?)")
    return Path(value)


# The parts whose INFO messages are progress worth showing on long work (export, quantize).
PROGRESS = ("qwen_asr_edge.export", "qwen_asr_edge.quant")


@contextlib.contextmanager
def package_logging(debug: bool = False, progress: Sequence[str] = ()) -> Iterator[logging.Handler]:
    """Send the package's log records to stderr as plain lines while the block runs.

    Args:
        debug: show every part's INFO messages (else WARNING and up).
        progress: logger names (parts of the package) whose INFO messages show even without debug.

    Yields:
        The handler, attached to the ``qwen_asr_edge`` logger only; removed, and the package's
        loggers restored, when the block ends.
    """
    package = logging.getLogger(PACKAGE_LOGGER)
    handler = logging.StreamHandler(sys.stderr)  # sys.stderr as it is now (tests capture it)
    handler.setFormatter(logging.Formatter("%(message)s"))
    parts = [logging.getLogger(name) for name in progress if name.startswith(f"{PACKAGE_LOGGER}.")]
    saved = [(lg, lg.level) for lg in (package, *parts)]
    propagate = package.propagate
    package.setLevel(logging.INFO if debug else logging.WARNING)
    for part in parts:
        part.setLevel(logging.INFO)
    # Not to the root as well: a library may have put a handler there (onnxruntime's int4
    # quantizer calls logging.basicConfig on import), and each line would print twice.
    package.propagate = False
    package.addHandler(handler)
    try:
        yield handler
    finally:
        package.removeHandler(handler)
        package.propagate = propagate
        for lg, level in saved:
            lg.setLevel(level)


@contextlib.contextmanager
def quiet_loggers(names: Sequence[str], level: int) -> Iterator[None]:
    """Raise other libraries' loggers to ``level`` while a command runs, and restore them after.

    For commands only (the process is theirs while they run): ``serve`` hides python-multipart's
    notes on a malformed upload (the client gets a 400 that says it), ``transcribe-many`` Ray
    Data's errors (a failed job is one line of ours). The Python API never calls it.
    """
    loggers = [logging.getLogger(name) for name in names]
    saved = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
    try:
        yield
    finally:
        for lg, old in zip(loggers, saved, strict=True):
            lg.setLevel(old)


def run_command(command: Callable[[], int], *, debug: bool = False, progress: Sequence[str] = ()) -> int:
    """Run a command's body the way every ``qwen-asr-edge`` command runs.

    Args:
        command: the body; returns the exit code.
        debug: INFO logging, and a package error propagates with its traceback.
        progress: logger names whose INFO messages show without ``debug`` (see ``PROGRESS``).

    Returns:
        The body's exit code, or 2 when it raised a package error (printed as one
        ``error: ...`` line on stderr).

    Raises:
        QwenAsrEdgeError: with ``debug``, whatever package error the body raised.
    """
    with package_logging(debug, progress):
        try:
            return command()
        except QwenAsrEdgeError as e:
            if debug:
                raise
            print(f"error: {e}", file=sys.stderr)
            return 2
