"""Live streams on the command line, end to end with the built-in demo model: shell pipelines
(sox ... | qwen-asr-edge transcribe - --live), headerless PCM on stdin, a FIFO whose writer comes
later, Ctrl-C mid-stream, input that is not audio, --simulate-live, and a terminal. What each
prints is checked against the streaming session run in-process on the same samples (the API,
never hard-coded text)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import re
import shlex
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from qwen_asr_edge.cli import main
from qwen_asr_edge.runtime import Transcriber, demo_bundle
from qwen_asr_edge.runtime.live import ERASE_LINE
from qwen_asr_edge.runtime.streaming import StreamUpdate

CLI = shlex.join([sys.executable, "-m", "qwen_asr_edge"])


@pytest.fixture(scope="module")
def asr() -> Transcriber:
    return Transcriber(demo_bundle())


@pytest.fixture(scope="module")
def talk(tmp_path_factory, speech_files) -> Path:
    """12.4 s of real speech, two recordings one after the other: 16 kHz, 16-bit WAV."""
    parts = [sf.read(speech_files[i], dtype="int16")[0] for i in (0, 2)]
    path = tmp_path_factory.mktemp("live") / "talk.wav"
    sf.write(path, np.concatenate(parts), 16000)
    return path


def samples(path: Path) -> np.ndarray:
    """(N,) float32: what libsndfile reads from the file, or from it piped."""
    return sf.read(path, dtype="float32")[0]


def streamed(asr: Transcriber, wav: np.ndarray) -> list[StreamUpdate]:
    """The updates of a streaming session fed ``wav`` (16 kHz), finish()'s last."""
    return list(asr.stream().updates([wav]))


def committed_lines(updates: list[StreamUpdate]) -> list[str]:
    """What --live prints to a pipe: each update's new committed text, one line each."""
    return [u.new_committed.strip() for u in updates if u.new_committed.strip()]


def shell(command: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=timeout, **kwargs
    )


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    (line,) = [line for line in stderr.splitlines() if line.startswith("error:")]
    return line


def test_a_sox_pipeline_prints_committed_text_as_it_comes(asr, talk):
    expected = streamed(asr, samples(talk))
    result = shell(f"sox {shlex.quote(str(talk))} -t wav - | {CLI} transcribe - --live")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == committed_lines(expected)
    assert len(result.stdout.splitlines()) > 1  # text came in pieces, as it was committed
    assert " ".join(result.stdout.split()) == " ".join(expected[-1].committed.split())
    assert not re.search(r"[\x00-\x09\x0b-\x1f]", result.stdout)  # to a pipe: no control characters


def test_headerless_pcm_on_stdin_gives_the_sessions_text(asr, talk):
    result = shell(
        f"sox {shlex.quote(str(talk))} -t s16 - | "
        f"{CLI} transcribe - --raw-format s16le --sample-rate 16000 --channels 1"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == streamed(asr, samples(talk))[-1].committed.strip() + "\n"


def test_simulate_live_0_on_a_file_gives_the_same_text_as_piping_it(asr, talk, capsys):
    piped = shell(f"sox {shlex.quote(str(talk))} -t wav - | {CLI} transcribe -")
    assert piped.returncode == 0, piped.stderr
    assert main(["transcribe", str(talk), "--simulate-live=0"]) == 0
    assert capsys.readouterr().out == piped.stdout
    assert main(["transcribe", str(talk), "--live"]) == 0  # --live alone streams a file as fast as it decodes
    assert capsys.readouterr().out.splitlines() == committed_lines(streamed(asr, samples(talk)))


def test_a_fifo_is_waited_for_then_read_as_its_writer_writes(asr, talk, tmp_path):
    fifo = tmp_path / "mic.fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(
        [*shlex.split(CLI), "transcribe", str(fifo), "--live"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(1.5)
        assert reader.poll() is None  # waiting for a writer, as cat would
        subprocess.run(
            ["sox", str(talk), "-t", "wav", str(fifo)], capture_output=True, check=True, timeout=30
        )
        out, err = reader.communicate(timeout=60)
    finally:
        reader.kill()
    assert reader.returncode == 0, err
    assert out.splitlines() == committed_lines(streamed(asr, samples(talk)))


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_mid_stream_finishes_the_text_heard_so_far(asr, talk, stop):
    """SIGINT while the reader waits for more audio (stdin stays open): the session is finished,
    its final text printed, and the exit code is 130; the text is the session's for the audio
    that came before. SIGTERM (`kill`) the same."""
    wav = samples(talk)
    child = subprocess.Popen(
        [*shlex.split(CLI), "transcribe", "-", "--raw-format", "s16le", "--live", "-f", "json"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=False,
    )  # fmt: skip
    pcm = (wav * 32768).astype("<i2").tobytes()

    def write():
        with contextlib.suppress(BrokenPipeError):
            child.stdin.write(pcm)
            child.stdin.flush()  # and keep it open: no end of stream

    threading.Thread(target=write, daemon=True).start()
    try:
        seen = []
        while not seen or seen[-1]["end"] < 10.0:  # five steps: well into the stream
            line = child.stdout.readline()
            assert line, child.stderr.read().decode()
            seen.append(json.loads(line))
        child.send_signal(stop)
        # Read to the end with stdin still open: communicate() would close it at once, and under
        # load the end of the input could then be seen before the Ctrl-C (exit 0, not 130).
        out = child.stdout.read()
        child.wait(timeout=60)
        err = child.stderr.read()
    finally:
        child.kill()
        with contextlib.suppress(BrokenPipeError):
            child.stdin.close()
    records = seen + [json.loads(line) for line in out.decode().splitlines()]
    final = records[-1]
    assert child.returncode == 130 and final["is_final"]
    heard = round(final["end"] * 16000)
    assert heard >= 10 * 16000
    expected = streamed(asr, wav[:heard])
    assert [r["committed"] for r in records] == [u.committed for u in expected]
    assert (
        one_error_line(err.decode())
        == f"error: interrupted; transcribed the first {final['end']:.1f} s of stdin"
    )


@pytest.mark.parametrize(
    "command, message",
    [
        # FFmpeg (the [media] extra, which the tests have) is given what libsndfile cannot read
        (
            "echo 'not audio at all' | {cli} transcribe -",
            "error: stdin: not a readable audio or video file (Invalid data found",
        ),
        ("{cli} transcribe - < /dev/null", "error: stdin: is empty (no audio came)"),
        # Headerless PCM with nothing at all is as empty (it gave one blank line, exit 0).
        ("{cli} transcribe - --raw-format s16le < /dev/null", "error: stdin: is empty (no audio came)"),
    ],
    ids=["text", "empty", "empty-raw"],
)
def test_a_pipe_that_is_not_audio_is_one_line(talk, command, message):
    result = shell(command.format(cli=CLI, talk=shlex.quote(str(talk))))
    assert result.returncode == 1 and not result.stdout
    assert one_error_line(result.stderr).startswith(message)


def test_flac_and_mp3_pipes_are_decoded_by_ffmpeg(asr, talk, tmp_path):
    """They were refused (libsndfile misreads them from a pipe); with PyAV FFmpeg reads them as they
    come. FLAC gives the WAV's samples, so the WAV's text."""
    wav = shell(f"sox {shlex.quote(str(talk))} -t wav - | {CLI} transcribe -")
    flac = shell(f"sox {shlex.quote(str(talk))} -t flac - | {CLI} transcribe - --live")
    assert wav.returncode == flac.returncode == 0, flac.stderr
    assert " ".join(flac.stdout.split()) == " ".join(wav.stdout.split())
    mp3 = tmp_path / "talk.mp3"
    sf.write(mp3, sf.read(talk, dtype="float32")[0], 16000, format="MP3")
    lossy = shell(f"cat {shlex.quote(str(mp3))} | {CLI} transcribe -")
    assert lossy.returncode == 0 and lossy.stdout.strip(), lossy.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["-", "--raw-format", "s17le"], "argument --raw-format: invalid choice: 's17le'"),
        (
            ["-", "--raw-format", "s16le", "--sample-rate", "0"],
            "--sample-rate must be 1000 to 1000000 Hz; got 0",
        ),
        (["-", "--sample-rate", "8000"], "--sample-rate describes headerless PCM: it goes with --raw-format"),
        (["{talk}", "--raw-format", "s16le"], "--raw-format is for a stream (-, a FIFO, a device)"),
        (["-", "{talk}"], "- (standard input) is a stream, transcribed on its own"),
        (["{talk}", "{talk}", "--live"], "a stream is transcribed on its own"),
        (["-", "--simulate-live"], "--simulate-live paces a file; stdin comes at its own pace"),
        (["--simulate-live", "{talk}"], "SPEED must be a number"),
        (["{talk}", "--simulate-live=-1"], "SPEED must be 0 or a positive number"),
        (["-", "--vad"], "--vad is for files transcribed whole, not for streams"),
        (["-", "--batch-size", "3"], "--batch-size is for files transcribed whole"),
        (["-", "-o", "out"], "--output-dir is for files"),
        (["-", "--live", "-f", "srt"], "--live prints text or JSON lines, not --format srt"),
    ],
)
def test_stream_options_that_cannot_work_are_refused_before_any_audio(talk, capsys, args, message):
    try:
        code = main(["transcribe", *(a.format(talk=talk) for a in args)])
    except SystemExit as e:  # a usage error, from argparse
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and message in err.splitlines()[-1] and "Traceback" not in err


@contextlib.contextmanager
def piped_stdin(monkeypatch, data: bytes) -> Iterator[None]:
    """sys.stdin is a pipe that another thread fills with ``data`` and closes, while the block runs."""
    read_end, write_end = os.pipe()

    def write():
        with contextlib.suppress(BrokenPipeError), open(write_end, "wb") as f:
            f.write(data)

    threading.Thread(target=write, daemon=True).start()
    with open(read_end, "rb") as stdin:
        monkeypatch.setattr("sys.stdin", stdin)
        yield


def test_a_stream_s_transcript_in_json_names_stdin(asr, talk, monkeypatch, capsys):
    with piped_stdin(monkeypatch, talk.read_bytes()):
        assert main(["transcribe", "-", "-f", "json"]) == 0
    (item,) = json.loads(capsys.readouterr().out)
    final = streamed(asr, samples(talk))[-1]
    assert item["source"] == "stdin" and item["text"] == final.committed.strip()
    assert item["duration"] == pytest.approx(final.end) and item["language"] == final.language


def test_on_a_terminal_the_text_is_redrawn_in_place(asr, talk):
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 60, 0, 0))
    child = subprocess.Popen(
        [*shlex.split(CLI), "transcribe", str(talk), "--live"],
        stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env={**os.environ, "COLUMNS": ""},
    )  # fmt: skip
    os.close(follower)
    output = b""
    with contextlib.suppress(OSError):  # EIO once the child has exited and the terminal is closed
        while chunk := os.read(leader, 1 << 16):
            output += chunk
    os.close(leader)
    assert child.wait(timeout=60) == 0
    text = output.decode()
    assert ERASE_LINE in text  # redrawn in place
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line.split(ERASE_LINE)[-1]) for line in text.split("\r\n")]
    lines = [line for line in lines if line and not line.startswith("note:")]
    assert all(len(line) < 60 for line in lines)  # wrapped by us, never by the terminal
    assert " ".join(lines) == " ".join(streamed(asr, samples(talk))[-1].committed.split())


def test_a_stream_that_fails_midway_keeps_the_text_before(asr, talk, monkeypatch, capsys):
    """f32le with a NaN at 6 s: the text of the 6 s before is printed, then one error line naming
    stdin (not the session's "stream"), exit code 1."""
    wav = samples(talk)
    broken = wav.copy()
    broken[6 * 16000 + 5] = np.nan
    with piped_stdin(monkeypatch, broken.astype("<f4").tobytes()):
        assert main(["transcribe", "-", "--raw-format", "f32le"]) == 1
    captured = capsys.readouterr()
    assert captured.out == streamed(asr, wav[: 6 * 16000])[-1].committed.strip() + "\n"
    assert one_error_line(captured.err) == (
        "error: stdin: contains NaN or infinite samples; the transcript covers the 6.0 s before"
    )


def test_a_stream_that_fails_on_its_first_block_prints_no_transcript(monkeypatch, capsys):
    """Nothing heard before the fault: no empty transcript line on stdout (found by a new user),
    and the error does not speak of a transcript of 0.0 s."""
    broken = np.full(16000, np.nan, "<f4")
    with piped_stdin(monkeypatch, broken.tobytes()):
        assert main(["transcribe", "-", "--raw-format", "f32le"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert one_error_line(captured.err) == "error: stdin: contains NaN or infinite samples"
