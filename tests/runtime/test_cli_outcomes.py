"""Every input is transcribed or refused in one line, and nothing a user gave is lost: one bad file
among good ones, outputs that would collide or replace earlier work, unusable destinations, a
write that fails after the work, a reader that goes away. With the built-in demo model, as a new
user runs it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from qwen_asr_edge.runtime import cli as transcribe_cli
from qwen_asr_edge.runtime import delivery
from qwen_asr_edge.runtime.demo import demo_examples
from qwen_asr_edge.runtime.errors import OutputError
from qwen_asr_edge.runtime.transcriber import Transcriber
from tests.support import run_cli


class Example:
    def __init__(self, record: dict):
        self.path, self.text = Path(record["audio"]), record["text"]


EXAMPLES = {Path(r["audio"]).stem: Example(r) for r in demo_examples()}


def long_copy(example: Example, folder: Path, seconds: float = 40.0) -> Path:
    """The example repeated to ``seconds``: longer than a 30 s chunk, so read a block at a time."""
    data, rate = sf.read(example.path)
    path = folder / "long.wav"
    sf.write(path, np.tile(data, int(seconds * rate / len(data)) + 1), rate)
    return path


def one_line_error(stderr: str, *names: str) -> str:
    """The stderr's error lines, checked: no traceback, each error one line naming its file."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    for name in names:
        assert any(name in line for line in errors), (name, stderr)
    return "\n".join(errors)


@pytest.fixture
def nan_at_35s(tmp_path) -> Path:
    """40 s of noise with one NaN at 35 s: longer than a chunk, so it is read a block at a time
    and fails only once decoding has begun (the issue's first example)."""
    x = (0.05 * np.random.default_rng(0).standard_normal(640000)).astype("float32")
    x[560000] = np.nan
    path = tmp_path / "nan40.wav"
    sf.write(path, x, 16000, subtype="FLOAT")
    return path


def test_a_file_failing_mid_stream_costs_only_itself(tmp_path, nan_at_35s):
    german, english = EXAMPLES["german"], EXAMPLES["english"]
    out = tmp_path / "out"
    result = run_cli("transcribe", german.path, nan_at_35s, english.path, "-o", out)
    assert result.returncode == 1
    errors = one_line_error(result.stderr, "nan40.wav")
    assert errors.count("\n") == 0 and "NaN" in errors
    assert (out / "german.txt").read_text(encoding="utf-8").strip() == german.text
    assert (out / "english.txt").read_text(encoding="utf-8").strip() == english.text
    assert sorted(p.name for p in out.iterdir()) == ["english.txt", "german.txt"]

    to_stdout = run_cli("transcribe", german.path, nan_at_35s, english.path)
    assert to_stdout.returncode == 1
    assert to_stdout.stdout.splitlines() == [
        f"{german.path}: {german.text}",
        f"{english.path}: {english.text}",
    ]


def test_clashing_names_get_distinct_outputs_and_earlier_work_is_kept(tmp_path):
    german, english = EXAMPLES["german"], EXAMPLES["english"]
    for folder, example in (("a", english), ("b", german)):
        (tmp_path / folder).mkdir()
        shutil.copy(example.path, tmp_path / folder / "take.wav")
    shutil.copy(english.path, tmp_path / "clip.wav")
    data, rate = sf.read(german.path)
    sf.write(tmp_path / "clip.flac", data, rate)
    inputs = [tmp_path / "a/take.wav", tmp_path / "b/take.wav", tmp_path / "clip.wav", tmp_path / "clip.flac"]
    out = tmp_path / "out"

    result = run_cli("transcribe", *inputs, "-o", out)
    assert result.returncode == 0, result.stderr
    texts = {str(p.relative_to(out)): p.read_text(encoding="utf-8").strip() for p in out.rglob("*.txt")}
    assert texts == {
        "a/take.txt": english.text,
        "b/take.txt": german.text,
        "clip.wav.txt": english.text,
        "clip.flac.txt": german.text,
    }

    (out / "clip.wav.txt").write_text("edited by hand\n", encoding="utf-8")
    again = run_cli("transcribe", *inputs, "-o", out)
    assert again.returncode == 2
    assert "3 more outputs exist too; pass --force" in one_line_error(again.stderr, "take.txt")
    assert "demo model" not in again.stderr  # refused before the model was even loaded
    assert (out / "clip.wav.txt").read_text(encoding="utf-8") == "edited by hand\n"

    forced = run_cli("transcribe", *inputs, "-o", out, "--force")
    assert forced.returncode == 0, forced.stderr
    assert (out / "clip.wav.txt").read_text(encoding="utf-8").strip() == english.text


def test_the_same_file_twice_is_transcribed_once(tmp_path):
    english = EXAMPLES["english"]
    result = run_cli("transcribe", english.path, english.path.parent, english.path, "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("more than once") == 1  # named three times: one note
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["english.txt", "german.txt"]


@pytest.mark.parametrize("destination", ["a file", "a file's child", "/proc", "a folder named english.txt"])
def test_unusable_destinations_are_refused_before_any_work(tmp_path, destination):
    (tmp_path / "file").write_text("mine\n")
    out = {
        "a file": tmp_path / "file",
        "a file's child": tmp_path / "file" / "out",
        "/proc": Path("/proc/qwen-asr-edge-out"),
        "a folder named english.txt": tmp_path / "out",
    }[destination]
    (tmp_path / "out" / "english.txt").mkdir(parents=True)
    result = run_cli("transcribe", EXAMPLES["english"].path, "-o", out)
    assert result.returncode == 2
    one_line_error(result.stderr, str(out))
    assert "demo model" not in result.stderr  # before the model was loaded
    assert (tmp_path / "file").read_text() == "mine\n"


def test_a_write_that_fails_after_the_work_keeps_the_transcript(tmp_path, monkeypatch, capsys):
    """A disk that fills up mid-run: the transcript goes to stdout instead, with one error line."""
    german, english = EXAMPLES["german"], EXAMPLES["english"]

    def disk_full(target, text, replace=False):
        if target.name == "english.txt":
            raise OutputError(target, "cannot write (No space left on device)")
        target.write_text(text, encoding="utf-8")
        return target

    monkeypatch.setattr(delivery, "write_text", disk_full)
    out = tmp_path / "out"
    code = transcribe_cli.main([str(english.path), str(german.path), "-o", str(out)])
    captured = capsys.readouterr()
    assert code == 1
    assert "english.txt: cannot write (No space left on device)" in one_line_error(captured.err)
    assert captured.out.strip() == f"{english.path}: {english.text}"  # named: it is one of several
    assert (out / "german.txt").read_text(encoding="utf-8").strip() == german.text


def test_an_unexpected_fault_in_one_file_spares_the_others(tmp_path, monkeypatch, capsys):
    """A bug that strikes one input (here a simulated one) is one error line, not a lost run."""
    german, english = EXAMPLES["german"], EXAMPLES["english"]
    long_file = long_copy(english, tmp_path)  # > one chunk: transcribed alone
    original = Transcriber.transcribe

    def flaky(self, audio, **kwargs):
        if str(audio).endswith("long.wav"):
            raise RuntimeError("simulated fault")
        return original(self, audio, **kwargs)

    monkeypatch.setattr(Transcriber, "transcribe", flaky)
    code = transcribe_cli.main([str(german.path), str(long_file), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1
    assert "long.wav: unexpected RuntimeError: simulated fault" in one_line_error(err)
    assert (tmp_path / "out" / "german.txt").read_text(encoding="utf-8").strip() == german.text


@pytest.mark.parametrize("args", [["-h"], ["transcribe", "-h"], ["transcribe", "{english}"]])
def test_a_reader_that_goes_away_is_no_traceback(args):
    """`qwen-asr-edge ... | head -1`: the pipe closes before we write."""
    args = [a.format(english=EXAMPLES["english"].path) for a in args]
    child = subprocess.Popen(
        [sys.executable, "-m", "qwen_asr_edge", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    child.stdout.close()  # the reader is gone before the child has started
    _, stderr = child.communicate(timeout=120)
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr


def test_outputs_get_the_usual_permissions(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    result = run_cli("transcribe", EXAMPLES["english"].path, "-o", tmp_path, "-f", "srt")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "english.srt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_word_timestamps_with_the_demo_model_say_what_to_do_before_any_work():
    result = run_cli("transcribe", EXAMPLES["english"].path, "--word-timestamps")
    assert result.returncode == 2 and not result.stdout
    assert "demo model lacks" in one_line_error(result.stderr) and "--bundle" in result.stderr


def test_an_output_that_appears_during_the_run_is_kept(tmp_path, monkeypatch, capsys):
    """Planned outputs are checked before the work, and again, atomically, when written: a file
    the user (or a second run into the same folder) put there meanwhile is not replaced."""
    english = EXAMPLES["english"]
    out = tmp_path / "out"
    original = Transcriber.transcribe_batch

    def meanwhile(self, *args, **kwargs):
        (out / "english.txt").write_text("precious\n")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Transcriber, "transcribe_batch", meanwhile)
    code = transcribe_cli.main([str(english.path), "-o", str(out)])
    captured = capsys.readouterr()
    assert code == 1
    assert "english.txt exists; it appeared during this run" in one_line_error(captured.err)
    assert (out / "english.txt").read_text() == "precious\n"
    assert captured.out.strip() == f"{english.path}: {english.text}"  # not lost either


def test_a_stdout_that_cannot_be_written_is_one_line(tmp_path):
    english = EXAMPLES["english"]
    command = [sys.executable, "-m", "qwen_asr_edge", "transcribe", str(english.path)]
    with open("/dev/full", "w") as full:
        done = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 1
    assert "stdout: cannot write (No space left on device)" in one_line_error(done.stderr)
    closed = subprocess.run(  # `>&-`: no stdout at all
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=120,
        preexec_fn=lambda: os.close(1),
    )  # fmt: skip
    assert closed.returncode == 2
    assert "stdout is closed" in one_line_error(closed.stderr)


def test_a_reader_that_goes_away_while_a_long_file_is_transcribed(tmp_path):
    english = EXAMPLES["english"]
    long_file = long_copy(english, tmp_path)
    child = subprocess.Popen(
        [sys.executable, "-m", "qwen_asr_edge", "transcribe", str(english.path), str(long_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    child.stdout.close()
    _, stderr = child.communicate(timeout=300)
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr and "error" not in stderr, stderr


@pytest.mark.parametrize(
    "options, message",
    [
        (["--max-chunk-seconds", "1e308"], "needs more than the model's 65536 positions"),
        (["--max-new-tokens", "100000000"], "needs more than the model's 65536 positions"),
        (["--batch-size", "99999999999999999999"], "--batch-size must be between 1 and 1024"),
        (["--threads", "100000"], "--threads must be between 1 and 1024"),
        (["-f", "srt"], "--format srt with several inputs needs --output-dir"),  # a folder of two
    ],
)
def test_options_that_would_fail_every_input_are_refused_before_any_work(options, message):
    folder = EXAMPLES["english"].path.parent
    result = run_cli("transcribe", folder, *options)
    assert result.returncode == 2 and not result.stdout
    assert "Traceback" not in result.stderr and message in result.stderr


def test_files_may_follow_options():
    german, english = EXAMPLES["german"], EXAMPLES["english"]
    result = run_cli("transcribe", german.path, "-f", "txt", english.path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"{german.path}: {german.text}", f"{english.path}: {english.text}"]


def test_ctrl_c_before_a_command_takes_over_is_one_line(monkeypatch, capsys):
    from qwen_asr_edge import cli as dispatcher

    def interrupted(name):
        raise KeyboardInterrupt

    monkeypatch.setattr(dispatcher.importlib, "import_module", interrupted)
    assert dispatcher.main(["transcribe", "x.wav"]) == 130
    assert capsys.readouterr().err == "error: interrupted\n"


def test_an_empty_name_is_refused_not_taken_as_the_current_folder(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "qwen_asr_edge", "transcribe", ""],
        capture_output=True, text=True, timeout=120, cwd=EXAMPLES["english"].path.parent,
    )  # fmt: skip
    assert result.returncode == 2 and not result.stdout
    assert "an empty file name" in result.stderr


def test_a_folder_with_nothing_to_transcribe_among_other_inputs_is_named(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("x")
    english = EXAMPLES["english"]
    result = run_cli("transcribe", tmp_path / "empty", english.path, tmp_path / "notes")
    assert result.returncode == 1
    errors = one_line_error(result.stderr, "empty: no audio files in it", "notes: no audio files in it")
    assert errors.count("\n") == 1
    assert result.stdout.strip() == english.text


@pytest.mark.parametrize("fmt", ["json", "txt"])
def test_transcripts_diverted_to_stdout_stay_valid_and_named(tmp_path, monkeypatch, capsys, fmt):
    german, english = EXAMPLES["german"], EXAMPLES["english"]
    out = tmp_path / "out"

    def disk_full(target, text, replace=False):
        raise OutputError(target, "cannot write (No space left on device)")

    monkeypatch.setattr(delivery, "write_text", disk_full)
    code = transcribe_cli.main([str(german.path), str(english.path), "-o", str(out), "-f", fmt])
    stdout = capsys.readouterr().out
    assert code == 1
    if fmt == "json":
        assert [d["text"] for d in json.loads(stdout)] == [german.text, english.text]
    else:
        assert stdout.splitlines() == [f"{german.path}: {german.text}", f"{english.path}: {english.text}"]
    assert not out.exists()  # made by this run, nothing written to it: removed again


def test_a_closed_stderr_keeps_stdout_clean(tmp_path):
    english = EXAMPLES["english"]
    done = subprocess.run(
        [sys.executable, "-m", "qwen_asr_edge", "transcribe", str(english.path), "-f", "json", "missing.wav"],
        capture_output=True, text=True, timeout=120, preexec_fn=lambda: os.close(2),
    )  # fmt: skip
    assert done.returncode == 1
    assert [d["text"] for d in json.loads(done.stdout)] == [english.text]  # no note or error lines in it


def test_json_to_a_full_stdout_is_exit_1(tmp_path):
    command = [
        sys.executable,
        "-m",
        "qwen_asr_edge",
        "transcribe",
        str(EXAMPLES["english"].path),
        "-f",
        "json",
    ]
    with open("/dev/full", "w") as full:
        done = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 1 and "stdout: cannot write" in one_line_error(done.stderr)


def test_a_context_too_long_for_the_model_is_named(tmp_path):
    result = run_cli("transcribe", EXAMPLES["english"].path, "--context", "hello " * 20000)
    assert result.returncode == 2
    assert "and the context (" in one_line_error(result.stderr)


def test_a_model_path_that_does_not_exist_is_refused_before_exporting(tmp_path):
    result = run_cli("transcribe", EXAMPLES["english"].path, "--model", tmp_path / "no-such-checkpoint")
    assert result.returncode == 2
    assert "no such folder" in one_line_error(result.stderr) and "exporting" not in result.stderr


def test_chunks_at_their_token_cap_are_one_warning_per_file(tmp_path):
    english = EXAMPLES["english"]
    long_file = long_copy(english, tmp_path)
    result = run_cli(
        "transcribe", long_file, english.path, "--max-new-tokens", "3", "--max-chunk-seconds", "10"
    )
    assert result.returncode == 0, result.stderr
    capped = [line for line in result.stderr.splitlines() if "token cap" in line or "its cap" in line]
    assert len(capped) == 2, result.stderr  # one per file, whatever the number of chunks
    (long_line,) = [line for line in capped if "long.wav" in line]
    assert re.search(r"long\.wav: (\d+) of \1 chunks reached their token cap", long_line), long_line
