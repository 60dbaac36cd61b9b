"""The inputs users have, end to end through the CLI with the built-in demo model: names that are
not UTF-8, folders, truncated files, and what only PyAV decodes."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from qwen_asr_edge.runtime.audio import load_audio
from tests.support import noise_clip, require, write_media
from tests.support import run_cli as cli

EXAMPLES = Path(__file__).resolve().parents[2] / "runtime" / "assets" / "demo" / "examples"
LATIN1 = os.fsdecode(b"r\xe9union.wav")  # "réunion.wav" as an old archive or USB stick names it


@pytest.fixture
def folder(tmp_path):
    """english.wav, réunion.wav (German speech, a Latin-1 name), notes.txt and sub/english2.wav."""
    d = tmp_path / "in"
    d.mkdir()
    shutil.copy(EXAMPLES / "english.wav", d / "english.wav")
    shutil.copy(EXAMPLES / "german.wav", os.fsencode(d / LATIN1))
    (d / "notes.txt").write_text("not audio\n")
    (d / "sub").mkdir()
    shutil.copy(EXAMPLES / "english.wav", d / "sub" / "english2.wav")
    return d


def test_a_folder_with_a_latin1_name_is_all_transcribed(folder, tmp_path):
    result = cli("transcribe", folder, "-f", "json")
    assert result.returncode == 0, result.stderr
    items = json.loads(result.stdout)
    assert [i["source"] for i in items] == [f"{folder}/english.wav", f"{folder}/r\\xe9union.wav"]
    assert items[1]["text"]  # German speech, decoded
    assert f"note: {folder}/notes.txt: skipped: not an audio or video file" in result.stderr
    assert f"note: {folder}/sub: skipped: a folder (pass --recursive" in result.stderr

    text = cli("transcribe", folder, "--recursive")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == [
        f"{folder}/english.wav",
        f"{folder}/r\\xe9union.wav",
        f"{folder}/sub/english2.wav",
    ]

    out = tmp_path / "out"
    srt = cli("transcribe", folder / LATIN1, "-f", "srt", "-o", out)
    assert srt.returncode == 0, srt.stderr
    assert os.listdir(os.fsencode(out)) == [b"r\xe9union.srt"]  # the original bytes, not the escape


def test_a_missing_latin1_name_is_one_line(folder):
    missing = folder / os.fsdecode(b"f\xeate.wav")
    result = cli("transcribe", missing, folder / "english.wav")
    assert result.returncode == 1
    assert f"error: {folder}/f\\xeate.wav: no such file\n" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout.strip()


def test_a_bundle_in_a_folder_with_a_latin1_name_loads(tmp_path):
    """onnxruntime and tokenizers take paths as UTF-8 text: a bundle under a Latin-1 folder name
    (surrogate-escaped in Python) is opened through a UTF-8 link, and transcribes as from its
    original place."""
    from qwen_asr_edge.runtime.demo import demo_bundle

    bundle = tmp_path / os.fsdecode(b"mod\xe8les") / "demo"
    shutil.copytree(os.fsencode(demo_bundle()), os.fsencode(bundle))
    temp = tmp_path / "temp"  # where the links go, to see them gone
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    moved = cli("transcribe", EXAMPLES / "english.wav", "--bundle", bundle, env=env)
    assert moved.returncode == 0, moved.stderr
    original = cli("transcribe", EXAMPLES / "english.wav", "--bundle", demo_bundle())
    assert moved.stdout == original.stdout and moved.stdout.strip()
    assert list(temp.glob("qwen-asr-edge-*")) == []


def test_truncated_files_report_the_decoded_length_with_one_warning(tmp_path):
    """A short file decoded whole and a long one read a block at a time (longer than
    --max-chunk-seconds by its header): both say the length they decode to."""
    for name, seconds in (("short.flac", 8.0), ("long.flac", 24.0)):
        sf.write(tmp_path / name, noise_clip(seconds) * 0.5, 16000, format="FLAC")
        data = (tmp_path / name).read_bytes()
        (tmp_path / name).write_bytes(data[: len(data) // 2])
    result = cli(
        "transcribe", tmp_path / "short.flac", tmp_path / "long.flac", "-f", "json",
        "--max-chunk-seconds", "10", "--max-new-tokens", "4",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    durations = {Path(i["source"]).name: i["duration"] for i in json.loads(result.stdout)}
    for name, header in (("short.flac", 8.0), ("long.flac", 24.0)):  # about half, and what decodes
        assert header / 2 - 1 < durations[name] < header / 2 + 0.5
        assert durations[name] == pytest.approx(load_audio(tmp_path / name).size / 16000, abs=1e-3)
    warnings = [line for line in result.stderr.splitlines() if ": truncated:" in line]
    assert warnings == [
        f"{tmp_path}/short.flac: truncated: the header announces 8.0 s, the file decodes to "
        f"{durations['short.flac']:.1f} s; transcribed what is there",
        f"{tmp_path}/long.flac: truncated: the header announces 24.0 s, the file decodes to "
        f"{durations['long.flac']:.1f} s; transcribed what is there",
    ]


def test_a_truncated_wav_piped_in_gets_the_same_warning(tmp_path):
    """`cat cut.wav | qwen-asr-edge transcribe -`: what came is transcribed, and stderr says the
    stream ended short of its header, as for the file (it said nothing)."""
    data = (EXAMPLES / "english.wav").read_bytes()
    whole = sf.info(EXAMPLES / "english.wav").duration
    command = [sys.executable, "-m", "qwen_asr_edge", "transcribe", "-", "-f", "json"]
    result = subprocess.run(command, input=data[: len(data) // 2], capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (transcript,) = json.loads(result.stdout)
    warnings = [line for line in result.stderr.decode().splitlines() if ": truncated:" in line]
    assert warnings == [
        f"stdin: truncated: the header announces {whole:.1f} s, the stream ended after "
        f"{transcript['duration']:.1f} s; transcribed what came"
    ]


def test_voice_memos_and_videos_in_a_folder(tmp_path):
    require(importlib.util.find_spec("av") is not None, "PyAV (the [media] extra)")
    speech, rate = sf.read(EXAMPLES / "english.wav", dtype="float32")
    write_media(tmp_path / "a_memo.m4a", speech, "aac", rate=rate)
    write_media(tmp_path / "b_talk.mp4", speech, "aac", video=True, rate=rate)
    write_media(tmp_path / "c_screen.mp4", None, video=True)
    result = cli("transcribe", tmp_path, "-f", "json")
    assert result.returncode == 1
    assert (
        result.stderr.splitlines()[-1]
        == f"error: {tmp_path}/c_screen.mp4: a video without sound (no audio stream)"
    )
    items = json.loads(result.stdout)
    assert [Path(i["source"]).name for i in items] == ["a_memo.m4a", "b_talk.mp4"]
    assert all(i["text"] and i["duration"] == pytest.approx(2.08, abs=0.1) for i in items)


def test_without_pyav_a_memo_names_the_extra_and_the_rest_is_transcribed(tmp_path):
    blocker = tmp_path / "no_av"
    (blocker / "av").mkdir(parents=True)
    (blocker / "av" / "__init__.py").write_text("raise ImportError('PyAV is not installed')\n")
    memo = tmp_path / "memo.m4a"
    memo.write_bytes(b"\0" * 1000)
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    result = cli("transcribe", memo, EXAMPLES / "english.wav", env=env)
    assert result.returncode == 1
    assert f"error: {memo}: reading .m4a files needs the [media] extra: pip install" in result.stderr
    assert "Traceback" not in result.stderr and "english.wav" in result.stdout


def test_names_with_control_characters_pipes_and_bad_text_keep_every_message_to_one_line(tmp_path):
    """A newline in a name is shown escaped in the result's line and in an error; a pipe is named
    as one, not as empty; a context that is not UTF-8 is refused before any work; a file given as
    --bundle is named as a file."""
    two_lines = tmp_path / "two\nlines.wav"
    shutil.copy(EXAMPLES / "english.wav", two_lines)
    fifo = tmp_path / "fifo\t.wav"
    os.mkfifo(fifo)
    result = cli("transcribe", two_lines, fifo, tmp_path / "gone\r.wav")
    assert result.returncode == 1
    (line,) = result.stdout.splitlines()
    assert line.startswith(f"{tmp_path}/two\\nlines.wav: ") and len(line) > len(
        f"{tmp_path}/two\\nlines.wav: "
    )
    errors = [e for e in result.stderr.splitlines() if e.startswith("error: ")]
    assert errors == [
        f"error: {tmp_path}/fifo\\t.wav: is not a regular file (a pipe): save it to a file first",
        f"error: {tmp_path}/gone\\r.wav: no such file",
    ]

    latin1 = os.fsdecode(b"caf\xe9")
    refused = cli("transcribe", EXAMPLES / "english.wav", "--context", latin1)
    assert refused.returncode != 0 and not refused.stdout
    assert refused.stderr.splitlines()[-1] == "error: context is not valid UTF-8 text"
    assert "Traceback" not in refused.stderr

    bundle = cli("transcribe", "--bundle", EXAMPLES / "english.wav", EXAMPLES / "english.wav")
    assert bundle.returncode != 0 and "Traceback" not in bundle.stderr
    assert f"bundle {EXAMPLES}/english.wav: is a file, not a bundle folder" in bundle.stderr


def test_a_name_that_starts_with_a_dash_after_double_dash(tmp_path):
    """`transcribe -- -take.wav` was refused ("the following arguments are required: files") when
    no file came before the `--`: CPython's intermixed parsing drops them."""
    from qwen_asr_edge.runtime.cli import parse_args

    for argv, files in (
        (["--", "-take.wav"], ["-take.wav"]),
        (["-f", "json", "--", "-take.wav", "-o"], ["-take.wav", "-o"]),
        (["a.wav", "--", "-take.wav"], ["a.wav", "-take.wav"]),
        (["a.wav", "-f", "json", "b.wav"], ["a.wav", "b.wav"]),
    ):
        assert [str(f) for f in parse_args(argv).files] == files, argv
    with pytest.raises(SystemExit):
        parse_args(["--"])
    shutil.copy(EXAMPLES / "german.wav", tmp_path / "-take.wav")
    command = [sys.executable, "-m", "qwen_asr_edge", "transcribe", "-f", "json", "--", "-take.wav"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (got,) = json.loads(done.stdout)
    assert got["source"] == "-take.wav" and got["text"]
