"""Each input's outcome, delivered in input order as soon as it is known: a transcript to its output
file (or to stdout), a failure as one error line; and the clean-up of an output folder a run made
but never wrote to. The CLI's; outputs.py plans the files and writes each one atomically."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

from .errors import OutputError, OutputExistsError, QwenAsrEdgeError, display_name
from .outputs import write_text
from .results import Transcript
from .writers import ResultWriter, TxtWriter


def first_missing(folder: Path) -> Path | None:
    """The outermost folder of ``folder``'s path that does not exist yet (what a run would create),
    or None when ``folder`` exists."""
    missing = None
    for path in (folder, *folder.parents):
        if os.path.lexists(path):
            break
        missing = path
    return missing


def remove_empty_folders(top: Path) -> None:
    """Remove ``top`` and the sub-folders this run made in it, if nothing is in them."""
    for folder in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            folder.rmdir()
    with contextlib.suppress(OSError):
        top.rmdir()


class Delivery:
    """Where each input's outcome goes, in input order: an output file, or stdout (txt, subtitles,
    or one JSON list at the end). A failed input is reported at once; a result that cannot be
    written is reported and printed on stdout instead, so no finished work is lost.

    Args:
        inputs: The run's inputs, in order (``finished`` and ``failed`` take their indices).
        writer: The output format.
        targets: One output file per input, planned by ``outputs.plan_outputs``; None for stdout.
        several: Name each transcript on stdout (``name: text``).
        as_json: Collect JSON documents and print one list at ``close``.
        force: Replace output files that appeared since the run was planned.

    Raises (from ``finished`` and ``close``):
        BrokenPipeError: stdout's reader went away.
        OutputError: stdout cannot be written.
    """

    def __init__(
        self,
        inputs: list[Path],
        writer: ResultWriter,
        targets: list[Path] | None,
        several: bool,
        as_json: bool,
        force: bool = False,
    ):
        self.inputs, self.writer, self.targets, self.force = inputs, writer, targets, force
        self.several, self.as_json = several, as_json
        self.outcomes: dict[int, Transcript | None] = {}
        self.next = 0  # the first input not yet emitted
        self.json: list[dict] = []
        self.problems = 0
        self.emitted = 0  # inputs whose transcript is out
        self.written = 0  # of those, written to their output file

    def failed(self, i: int, error: Exception) -> None:
        if isinstance(error, QwenAsrEdgeError):
            print(f"error: {error}", file=sys.stderr)
        else:  # a bug: still one line, and the other inputs go on
            print(
                f"error: {display_name(self.inputs[i])}: unexpected {type(error).__name__}: {error} "
                "(--debug shows the traceback; please report it)",
                file=sys.stderr,
            )
        self.problems += 1
        self.outcomes[i] = None
        self._flush()

    def finished(self, i: int, transcript: Transcript) -> None:
        self.outcomes[i] = transcript
        self._flush()

    def close(self) -> None:
        if self.as_json and (self.targets is None or self.json):
            print_out(json.dumps(self.json, ensure_ascii=False, indent=2) + "\n")

    def _flush(self) -> None:
        while self.next in self.outcomes:
            transcript = self.outcomes.pop(self.next)
            if transcript is not None:
                self._emit(self.next, transcript)
                self.emitted += 1
            self.next += 1

    def _emit(self, i: int, transcript: Transcript) -> None:
        if self.targets is not None:
            try:
                write_text(self.targets[i], self.writer.format(transcript), replace=self.force)
                self.written += 1
                return
            except (OutputError, OutputExistsError) as e:
                print(f"error: {e}; its transcript goes to stdout instead", file=sys.stderr)
                self.problems += 1
        # Diverted transcripts are always named: the run may divert more than one.
        named = self.several or self.targets is not None
        if self.as_json:
            self.json.append(transcript.to_dict())  # one valid JSON list at the end
        elif isinstance(self.writer, TxtWriter):
            print_out((f"{transcript.source}: {transcript.text}" if named else transcript.text) + "\n")
        else:
            print_out(self.writer.format(transcript))


def print_out(text: str) -> None:
    """Write to stdout now (not when the buffer fills), so a failure names itself at once.

    Raises:
        BrokenPipeError: the reader went away (``| head``); the dispatcher stops quietly.
        OutputError: stdout cannot be written (``> /dev/full``, a full disk).
    """
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as e:
        raise OutputError("stdout", f"cannot write ({e.strerror or e})") from None
