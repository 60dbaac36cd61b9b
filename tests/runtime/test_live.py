"""Showing a stream's text (runtime/live.py): what each view writes for a sequence of updates, which
views a run picks for terminals, pipes and files, and run_stream's ends (the source ends, fails,
or Ctrl-C), with a small fake session so that every update is known."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import time

import numpy as np
import pytest

from qwen_asr_edge.runtime.errors import AudioError
from qwen_asr_edge.runtime.live import (
    ERASE_LINE,
    CommittedLines,
    JsonLines,
    TerminalView,
    run_stream,
    stream_transcript,
    views_for,
)
from qwen_asr_edge.runtime.streaming import StreamUpdate

# (committed, tentative) after each step of a made-up stream; the last is finish()'s.
STEPS = [
    ("", "Hello wor"),
    ("Hello", " world, this is"),
    ("Hello world, this is", " a test of"),
    ("Hello world, this is a test of the live view.", ""),
]


def updates() -> list[StreamUpdate]:
    out, before = [], ""
    for i, (committed, tentative) in enumerate(STEPS):
        final = i == len(STEPS) - 1
        out.append(
            StreamUpdate(committed, tentative, "English", 2.0 * (i + 1), committed[len(before) :], final)
        )
        before = committed
    return out


class FakeSession:
    """StreamingSession's feed/finish: one update per 2 s of 16 kHz audio, from STEPS."""

    def __init__(self):
        self.fed = 0
        self.rates: set[int] = set()
        self._updates = iter(updates())
        self.finished = False

    def feed(self, samples: np.ndarray, sample_rate: int | None = None) -> list[StreamUpdate]:
        self.rates.add(sample_rate)
        steps_before = self.fed // 32000
        self.fed += samples.shape[0]
        return [next(self._updates) for _ in range(self.fed // 32000 - steps_before)]

    def finish(self) -> StreamUpdate:
        self.finished = True
        *_, last = self._updates
        return last


def shown(text: str) -> list[str]:
    """What a terminal shows: each line as its last redraw left it."""
    lines = [line.split(ERASE_LINE)[-1] for line in text.removesuffix("\n").split("\n")]
    return [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in lines]


def test_committed_lines_have_no_control_characters_and_join_to_the_transcript():
    out = io.StringIO()
    view = CommittedLines(out)
    for update in updates():
        view.show(update)
    view.close()
    assert out.getvalue() == "Hello\nworld, this is\na test of the live view.\n"
    assert " ".join(out.getvalue().split("\n")).strip() == STEPS[-1][0]


def test_json_lines_carry_every_update():
    out = io.StringIO()
    view = JsonLines(out)
    for update in updates():
        view.show(update)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["committed"], r["tentative"]) for r in records] == STEPS
    assert [r["is_final"] for r in records] == [False, False, False, True]
    assert records[1]["new_committed"] == "Hello" and records[1]["end"] == 4.0


def test_terminal_view_shows_the_tentative_tail_in_place_and_wraps_committed_text():
    out = io.StringIO()
    view = TerminalView(out, keep=True, columns=21, color=True)
    for update in updates():
        view.show(update)
    view.close()
    text = out.getvalue()
    assert "\x1b[2m world, this is\x1b[0m" in text  # the tentative tail, dim
    lines = shown(text)
    assert lines == ["Hello world, this is", "a test of the live", "view."]
    assert all(len(line) <= 20 for line in lines)  # never wrapped by the terminal: erasable


def test_terminal_view_cuts_a_long_tentative_tail_to_the_line():
    out = io.StringIO()
    view = TerminalView(out, keep=True, columns=16, color=False)
    view.show(StreamUpdate("Hi", " there, a very long tentative tail", "English", 2.0, "Hi"))
    (line,) = shown(out.getvalue())
    assert line == "Hi there, a ve…"  # 15 columns: the 16th would wrap at once
    assert "\x1b[2m" not in out.getvalue()


def test_status_line_shows_the_end_of_the_text_and_is_erased():
    out = io.StringIO()
    view = TerminalView(out, keep=False, columns=21, color=False)
    for update in updates():
        view.show(update)
    assert shown(out.getvalue())[-1] == "…" + STEPS[-1][0][-19:]  # 20 columns
    view.close()
    assert out.getvalue().endswith(ERASE_LINE) and "\n" not in out.getvalue()


def test_wide_characters_count_twice():
    out = io.StringIO()
    view = TerminalView(out, keep=True, columns=11, color=False)
    view.show(StreamUpdate("今天天气很好我们", "", "Chinese", 2.0, "今天天气很好我们"))
    view.close()
    assert shown(out.getvalue()) == ["今天天气很", "好我们"]  # 10 columns, then the rest


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    "live, as_json, stdout, stderr, expected",
    [
        (True, False, Tty(), Tty(), [("TerminalView", True)]),  # --live on a terminal
        (True, False, io.StringIO(), Tty(), [("CommittedLines", None), ("TerminalView", False)]),
        (True, False, io.StringIO(), io.StringIO(), [("CommittedLines", None)]),  # all redirected
        (True, True, Tty(), Tty(), [("JsonLines", None)]),  # no status line between the JSON lines
        (False, False, Tty(), Tty(), [("TerminalView", False)]),  # transcript at the end; live on stderr
        (False, False, io.StringIO(), io.StringIO(), []),
        (True, False, None, None, []),  # stdout closed (the CLI refuses that before)
    ],
)
def test_views_for_terminals_pipes_and_files(live, as_json, stdout, stderr, expected):
    views = views_for(live, as_json, stdout, stderr)
    assert [(type(v).__name__, getattr(v, "keep", None)) for v in views] == expected
    for view in views:
        if isinstance(view, TerminalView):
            assert view.out is (stdout if view.keep else stderr)


def test_run_stream_feeds_every_block_shows_every_update_and_finishes():
    session, out = FakeSession(), io.StringIO()
    blocks = [(np.zeros(16000, np.float32), 16000)] * 7  # 3.5 steps
    outcome = run_stream(session, blocks, [JsonLines(out)])
    assert session.fed == 7 * 16000 and session.rates == {16000} and session.finished
    assert outcome.final.committed == STEPS[-1][0] and not outcome.interrupted and outcome.error is None
    assert len(out.getvalue().splitlines()) == 4  # three steps, then the final update


def test_run_stream_finishes_on_ctrl_c_and_on_a_failing_source():
    def interrupted():
        yield np.zeros(32000, np.float32)
        raise KeyboardInterrupt

    session = FakeSession()
    outcome = run_stream(session, interrupted(), sample_rate=16000)
    assert outcome.interrupted and session.finished and outcome.final.is_final

    def failing():
        yield np.zeros(32000, np.float32)
        raise AudioError("stdin", "cannot be decoded after 2.0 s (broken)")

    outcome = run_stream(FakeSession(), failing())
    assert str(outcome.error) == "stdin: cannot be decoded after 2.0 s (broken)" and outcome.final.is_final


def test_ctrl_c_during_a_step_lets_the_step_end_first(python_sigint):
    """SIGINT while the session computes a step: the step completes (and is shown), then the
    stream stops as for any Ctrl-C; Python's own handler is back afterwards."""

    class InterruptedMidStep(FakeSession):
        def feed(self, samples, sample_rate=None):
            if self.fed >= 32000:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)  # the handler has run by now, inside the step
            return super().feed(samples, sample_rate)

    session, out = InterruptedMidStep(), io.StringIO()
    blocks = (np.zeros(32000, np.float32) for _ in range(3))
    outcome = run_stream(session, blocks, [JsonLines(out)], sample_rate=16000)
    assert outcome.interrupted and session.fed == 2 * 32000  # the second step was not cut short
    assert [json.loads(line)["end"] for line in out.getvalue().splitlines()] == [2.0, 4.0, 8.0]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_during_a_step_waits_for_it_where_ctrl_c_is_ignored(python_sigint):
    """A script's background job (`cmd &`) ignores SIGINT; SIGTERM, which the command takes as
    Ctrl-C, must still let the step end first (it used to cut it in two there)."""

    def stop(signum, frame):
        raise KeyboardInterrupt

    class TerminatedMidStep(FakeSession):
        def feed(self, samples, sample_rate=None):
            if self.fed >= 32000:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)  # the handler has run by now, inside the step
            return super().feed(samples, sample_rate)

    previous = signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        session = TerminatedMidStep()
        blocks = (np.zeros(32000, np.float32) for _ in range(3))
        outcome = run_stream(session, blocks, sample_rate=16000)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert outcome.interrupted and session.fed == 2 * 32000 and session.finished


def test_run_stream_raises_when_the_source_fails_before_any_audio():
    def not_audio():
        raise AudioError("stdin", "not audio")
        yield

    session = FakeSession()
    with pytest.raises(AudioError, match="not audio"):
        run_stream(session, not_audio())
    assert not session.finished


def test_a_stream_s_transcript_is_one_segment():
    final = updates()[-1]
    transcript = stream_transcript(final, "stdin", "CPUExecutionProvider", "fp32")
    assert transcript.text == STEPS[-1][0] and transcript.language == "English"
    assert transcript.duration == final.end and len(transcript.segments) == 1
    assert (transcript.segments[0].start, transcript.segments[0].end) == (0.0, final.end)
    assert transcript.source == "stdin"
