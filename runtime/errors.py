"""One error hierarchy for the whole package.

Every error says what went wrong with which file and, where there is one, what to do about it.
Each subclass also inherits the matching builtin so callers can catch ``ValueError`` or
``FileNotFoundError`` without knowing this package.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Characters that would split a name over lines or move the cursor: C0 and C1 controls, DEL, and
# Unicode's line and paragraph separators (which ``str.splitlines`` splits at).
_CONTROL_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}
_CONTROL_ESCAPES.update({ord("\n"): "\\n", ord("\t"): "\\t", ord("\r"): "\\r"})
_CONTROL_ESCAPES.update({0x2028: "\\u2028", 0x2029: "\\u2029"})


def display_name(source: str | os.PathLike) -> str:
    """A file name as one line of text that can always be printed, written to JSON or logged.

    Python decodes a name whose bytes are not valid UTF-8 (a Latin-1 "é" from an old archive or a
    USB stick) with surrogate escapes, which stdout and UTF-8 files refuse; such bytes are shown
    as ``\\xNN``, the way Python's own ``backslashreplace`` shows them. Control characters (a
    newline or a tab in a name) are shown as escapes too (``\\n``, ``\\t``, ``\\r``, else
    ``\\xNN``), so an error or a ``name: text`` line is always one line. Keep the original path
    (not this text) to open or name files.
    """
    return os.fsencode(os.fspath(source)).decode("utf-8", "backslashreplace").translate(_CONTROL_ESCAPES)


class QwenAsrEdgeError(Exception):
    """Base class of every error this package raises on purpose."""


class AudioError(QwenAsrEdgeError, ValueError):
    """An audio input that cannot be transcribed."""

    def __init__(self, source: str | Path, problem: str):
        self.source = display_name(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")


class AudioFileNotFoundError(AudioError, FileNotFoundError):
    def __init__(self, source: str | Path):
        super().__init__(source, "no such file")


class BundleError(QwenAsrEdgeError, ValueError):
    """A bundle folder that is missing, incomplete, altered or of an unknown format."""

    def __init__(self, path: str | Path, problem: str, fix: str | None = None):
        self.path = display_name(path)
        self.problem = problem
        message = f"bundle {self.path}: {problem}"
        if fix:
            message += f" ({fix})"
        super().__init__(message)


class CheckpointError(QwenAsrEdgeError, ValueError):
    """A source checkpoint that is incomplete, inconsistent or not a Qwen3-ASR model."""

    def __init__(self, path: str | Path, problem: str):
        self.path = display_name(path)
        self.problem = problem
        super().__init__(f"checkpoint {self.path}: {problem}")


class InputError(QwenAsrEdgeError, ValueError):
    """A bad argument: an unsupported language, a malformed context, an impossible option."""


class ProviderError(QwenAsrEdgeError, RuntimeError):
    """The requested onnxruntime execution provider is not available."""


class MissingDependencyError(QwenAsrEdgeError, ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""

    def __init__(self, what: str, extra: str):
        self.what = what
        self.extra = extra
        # Not on PyPI yet: from a checkout it is `pip install -e ".[extra]"`. The packaged app
        # (scripts/build-app.sh, PyInstaller sets sys.frozen) can install nothing into itself.
        where = (
            ", which the packaged app leaves out: install the package:"
            if getattr(sys, "frozen", False)
            else ":"
        )
        super().__init__(
            f"{what} needs the [{extra}] extra{where} pip install -e '.[{extra}]' in a qwen-asr-edge checkout"
        )


class OutputExistsError(QwenAsrEdgeError, FileExistsError):
    """The folder or file to write already exists and replacing it was not asked for."""

    def __init__(self, path: str | Path, fix: str = "pass --force to replace it"):
        self.path = str(path)
        self.problem = "exists"
        self.fix = fix
        super().__init__(f"{self.path} exists; {fix}")


class OutputError(QwenAsrEdgeError, OSError):
    """A place to write results that cannot be used: not a folder, not writable, a folder in the way."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __str__(self) -> str:  # OSError's own str would show the args tuple
        return f"{self.path}: {self.problem}"


class ExportError(QwenAsrEdgeError, RuntimeError):
    """Exporting a checkpoint failed (the checkpoint itself was fine: see CheckpointError)."""


class ExportValidationError(ExportError):
    """An exported graph disagrees with the torch model it came from (a bug in the exporter).

    ``value`` and ``tolerance`` are numbers for a measured error (relative to the output's
    scale), or text for a structural check (lengths, names, top classes).
    """

    def __init__(self, graph: str, metric: str, value: float | str, tolerance: float | str):
        self.graph = graph
        self.metric = metric
        self.value = value
        self.tolerance = tolerance

        def show(x: float | str) -> str:
            return f"{x:.2e}" if isinstance(x, float) else str(x)

        relation = "exceeds tolerance" if isinstance(value, float) else "is not"
        super().__init__(
            f"exported {graph} fails validation against torch: {metric} {show(value)} {relation} "
            f"{show(tolerance)} (an exporter bug; please report it with the checkpoint's config.json)"
        )
