"""Showing a stream's text as it comes (``transcribe --live``, ``listen``), and running a session
over a source of blocks until it ends or Ctrl-C.

Views of ``StreamUpdate``s, picked by ``views_for``:

* ``CommittedLines``: to a pipe or a file, one plain line per update that committed text (its
  ``new_committed``, stripped); the last comes from the end of the stream. No control characters.
* ``JsonLines``: one JSON object per update (``--live --format json``), for programs.
* ``TerminalView``: on a terminal, the committed text flows as lines and the tentative tail
  follows it in place (dim), redrawn with a carriage return and an erase-line; it never wraps,
  so the redraw always erases it. With ``keep=False`` it is one status line, cleared at the end
  (the live view on stderr while stdout gets the transcript).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TextIO

import numpy as np

from .delivery import print_out
from .errors import AudioError
from .results import Segment, Transcript
from .signals import deferred_signals
from .streaming import StreamingSession, StreamUpdate

ERASE_LINE = "\r\x1b[K"
DIM, PLAIN = "\x1b[2m", "\x1b[0m"
ELLIPSIS = "…"
# Control characters (and line separators) shown as a space on a terminal: a newline in the text
# would break the one-line redraw.
_CONTROLS = {c: " " for c in (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)}


class View:
    """Where updates go. ``show`` is called for every update, the final one included; ``close``
    once at the end."""

    def show(self, update: StreamUpdate) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _write(out: TextIO, text: str) -> None:
    if out is sys.stdout:
        print_out(text)  # a failing stdout is one line (OutputError), a closed pipe a quiet stop
    else:
        out.write(text)
        out.flush()


class CommittedLines(View):
    """One line per update that committed something: its ``new_committed``, stripped. The lines
    joined as their language writes (a space, none between Chinese or Japanese characters) are
    the transcript."""

    def __init__(self, out: TextIO):
        self.out = out

    def show(self, update: StreamUpdate) -> None:
        text = update.new_committed.strip()
        if text:
            _write(self.out, text + "\n")


class JsonLines(View):
    """One JSON object per update: committed, tentative, new_committed, language, end (s), is_final."""

    def __init__(self, out: TextIO):
        self.out = out

    def show(self, update: StreamUpdate) -> None:
        record = {
            "committed": update.committed,
            "tentative": update.tentative,
            "new_committed": update.new_committed,
            "language": update.language,
            "end": round(update.end, 3),
            "is_final": update.is_final,
        }
        _write(self.out, json.dumps(record, ensure_ascii=False) + "\n")


def _width(text: str) -> int:
    """Terminal columns: 2 for wide (CJK) characters, 0 for combining marks."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text
    )


def _fit(text: str, columns: int) -> int:
    """How many leading characters of ``text`` fit in ``columns``."""
    used = 0
    for i, c in enumerate(text):
        used += _width(c)
        if used > columns:
            return i
    return len(text)


class TerminalView(View):
    """The text in place on a terminal.

    Args:
        out: The terminal (stdout or stderr).
        keep: True: committed text stays, as lines (``--live`` on a terminal). False: one status
            line showing the end of the text, erased by ``close`` (a live view on stderr while
            the transcript goes to stdout).
        columns: The terminal's width (default: asked of ``out``, else $COLUMNS, else 80).
        color: Show the tentative tail dim (default: unless $NO_COLOR is set).
    """

    def __init__(self, out: TextIO, keep: bool = True, columns: int | None = None, color: bool | None = None):
        self.out = out
        self.keep = keep
        self.columns = max(10, (columns or _columns(out)) - 1)  # the last column would wrap at once
        self.color = (not os.environ.get("NO_COLOR")) if color is None else color
        self.line = ""  # committed text on the current screen line (keep=True)
        self.drawn = False

    def show(self, update: StreamUpdate) -> None:
        tentative = update.tentative.translate(_CONTROLS)
        if self.keep:
            self.line += update.new_committed.translate(_CONTROLS)
            self._wrap()
            shown, tail = self.line, tentative
            room = self.columns - _width(shown)
            if _width(tail) > room:
                tail = tail[: max(0, _fit(tail, room - 1))] + ELLIPSIS if room > 1 else ""
        else:  # the end of the whole text, the tentative part dim
            committed = update.committed.translate(_CONTROLS).lstrip()
            text, split = committed + tentative, len(committed)
            if _width(text) > self.columns:
                skip = len(text) - _fit(text[::-1], self.columns - 1)
                text, split = ELLIPSIS + text[skip:], max(0, split - skip) + 1
            shown, tail = text[:split], text[split:]
        if tail and self.color:
            tail = f"{DIM}{tail}{PLAIN}"
        _write(self.out, ERASE_LINE + shown + tail)
        self.drawn = True

    def _wrap(self) -> None:
        """Finish screen lines of committed text that are full, at a space where there is one."""
        while _width(self.line) > self.columns:
            cut = _fit(self.line, self.columns)
            space = self.line.rfind(" ", 0, cut + 1)
            if space > 0:
                cut = space
            _write(self.out, ERASE_LINE + self.line[:cut].rstrip() + "\n")
            self.line = self.line[cut:].lstrip()

    def close(self) -> None:
        if self.keep:
            _write(self.out, ERASE_LINE + self.line.rstrip() + "\n")
        elif self.drawn:
            _write(self.out, ERASE_LINE)


def _columns(out: TextIO) -> int:
    """$COLUMNS when set (as shutil.get_terminal_size reads it), else the terminal's, else 80."""
    with contextlib.suppress(ValueError):
        if (columns := int(os.environ.get("COLUMNS", ""))) > 0:
            return columns
    try:
        columns = os.get_terminal_size(out.fileno()).columns
    except (AttributeError, OSError, ValueError):
        columns = 0
    return columns or 80  # a pseudo-terminal nobody sized says 0


def is_terminal(out: TextIO | None) -> bool:
    try:
        return out is not None and out.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def views_for(live: bool, as_json: bool, stdout: TextIO | None, stderr: TextIO | None) -> list[View]:
    """The views of a stream: what ``--live`` prints on stdout (the in-place view on a terminal,
    else committed lines or JSON lines), and the in-place status line on stderr when that is a
    terminal and stdout is not already showing the text live there.

    Args:
        live: ``--live``: the text on stdout as it is committed (else only at the end, by the caller).
        as_json: JSON lines instead of text.
        stdout, stderr: The streams (None when closed).
    """
    views: list[View] = []
    on_terminal = is_terminal(stdout)
    if live and stdout is not None:
        if as_json:
            views.append(JsonLines(stdout))
        elif on_terminal:
            views.append(TerminalView(stdout, keep=True))
        else:
            views.append(CommittedLines(stdout))
    if is_terminal(stderr) and not (live and on_terminal):
        views.append(TerminalView(stderr, keep=False))
    return views


@dataclass(frozen=True)
class StreamOutcome:
    """How a stream ended.

    Attributes:
        final: ``finish()``'s update: the whole committed text.
        interrupted: Ctrl-C ended it (the text covers the audio up to then).
        error: The input failed after it began (a decode error, NaN samples); the text covers the
            audio before.
    """

    final: StreamUpdate
    interrupted: bool = False
    error: AudioError | None = None


def run_stream(
    session: StreamingSession,
    blocks: Iterable[np.ndarray | tuple[np.ndarray, int]],
    views: Sequence[View] = (),
    sample_rate: int | None = None,
) -> StreamOutcome:
    """Feed ``blocks`` to ``session`` as they come, show every update, and finish the session when
    the blocks end, when they fail, or on Ctrl-C.

    Args:
        session: A new session (``Transcriber.stream``).
        blocks: (n,) arrays at ``sample_rate``, or ``(array, rate)`` pairs.
        views: Where the updates go; each is closed at the end.
        sample_rate: Hz of bare arrays (default: 16000).

    Returns:
        How it ended, with the final update. A second Ctrl-C, while the tail is decoded,
        propagates (KeyboardInterrupt).

    Raises:
        QwenAsrEdgeError: the source failed before its first block (it could not be opened, or is
            not audio): there is nothing to show.
    """
    interrupted, error, started = False, None, False

    def show(update: StreamUpdate) -> None:
        for view in views:
            view.show(update)

    try:
        for block in blocks:  # Ctrl-C lands here, while a block is awaited
            started = True
            array, rate = block if isinstance(block, tuple) else (block, sample_rate)
            with deferred_signals():  # not inside a step: the session would be left half-way
                for update in session.feed(array, rate):
                    show(update)
    except KeyboardInterrupt:
        interrupted = True
    except AudioError as e:
        if not started:
            raise
        error = e
    final = session.finish()  # a second Ctrl-C here aborts (KeyboardInterrupt), as usual
    show(final)
    for view in views:
        view.close()
    return StreamOutcome(final, interrupted, error)


def stream_transcript(
    final: StreamUpdate, source: str, provider: str = "", precision: str = ""
) -> Transcript:
    """A stream's result as a Transcript (for ``--format``): one segment, 0 to the stream's end,
    holding the committed text."""
    segment = Segment(0.0, final.end, final.committed.strip(), final.language)
    return Transcript.of([segment], final.end, source=source, provider=provider, precision=precision)
