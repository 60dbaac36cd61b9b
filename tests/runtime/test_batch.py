"""``qwen-asr-edge transcribe-many`` on a local Ray with 2 CPUs (started once for the module):
a folder of 50 short clips equals the CLI's transcripts file by file, a job killed half-way
resumes with every file once, and bad files are error rows that do not stop the job."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from qwen_asr_edge.runtime import batch
from qwen_asr_edge.runtime.demo import demo_examples
from tests.support import SPEECH_DIR, run_cli

LIBRIVOX = SPEECH_DIR / "librivox"
CLIPS = 50


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def make_archive(folder: Path) -> list[str]:
    """50 short clips in a folder and two sub-folders, made from the demo examples (cut, joined,
    resampled, stereo, quieter, FLAC) and Debian's real speech when present; one over 30 s (a long
    file, read a block at a time); every name unique. Returns their paths relative to ``folder``."""
    sources = [sf.read(e["audio"], dtype="float32") for e in demo_examples()]
    if LIBRIVOX.is_dir():
        sources += [sf.read(p, dtype="float32") for p in sorted(LIBRIVOX.glob("*.wav"))]
    rng = np.random.default_rng(7)
    names = []
    for i in range(CLIPS - 1):
        wav, rate = sources[i % len(sources)]
        kind = i // len(sources) % 6
        if kind == 1:  # cut
            wav = wav[: int(len(wav) * rng.uniform(0.6, 0.9))]
        elif kind == 2:  # joined with the next one
            other, other_rate = sources[(i + 1) % len(sources)]
            if other_rate == rate:
                wav = np.concatenate([wav, np.zeros(rate // 4, np.float32), other])
        elif kind == 3:  # resampled (by the file's rate: the runtime resamples)
            rate = [8000, 22050, 44100][i % 3]
            wav = np.interp(np.arange(int(len(wav) * rate / 16000)) * 16000 / rate, np.arange(len(wav)), wav)
        elif kind == 4:  # stereo, quieter
            wav = np.stack([wav, 0.5 * wav], axis=1) * 0.5
        sub = ["", "a", "a/b"][i % 3]
        suffix = ".flac" if kind == 5 else ".wav"
        name = f"{sub}/clip{i:02d}{suffix}".lstrip("/")
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(folder / name, np.asarray(wav, np.float32), rate)
        names.append(name)
    long = np.concatenate([s[0] for s in sources if s[1] == 16000] * 8)[: 16000 * 36]
    sf.write(folder / "a" / "long.wav", long, 16000)  # over --max-chunk-seconds (30): read in blocks
    return sorted([*names, "a/long.wav"])


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray for the module, 2 CPUs, quiet; yields its address (for a second driver)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> tuple[Path, list[str]]:
    folder = tmp_path_factory.mktemp("archive")
    return folder, make_archive(folder)


@pytest.fixture(scope="module")
def cli_texts(archive, tmp_path_factory) -> dict[str, dict]:
    """The CLI's transcript of every file (one run over the folder with --output-dir, as text and
    as JSON), by stem: {"text": the .txt file, "json": the .json document}."""
    folder, names = archive
    found: dict[str, dict] = {}
    for fmt in ("txt", "json"):
        out = tmp_path_factory.mktemp(f"cli-{fmt}")
        done = run_cli("transcribe", folder, "--recursive", "--format", fmt, "--output-dir", out)
        assert done.returncode == 0, done.stderr
        for p in out.rglob(f"*.{fmt}"):
            text = p.read_text(encoding="utf-8")
            found.setdefault(p.stem, {})["text" if fmt == "txt" else "json"] = (
                text if fmt == "txt" else json.loads(text)
            )
    assert len(found) == len(names)
    return found


def check_equal(rows: list[dict], names: list[str], cli_texts: dict[str, dict]) -> None:
    """Every file once, no errors, its text as the CLI prints it, and every field as its JSON."""
    assert sorted(r["path"] for r in rows) == names
    for row in rows:
        assert row["error"] is None, row
        cli = cli_texts[Path(row["path"]).stem]
        assert row["text"] + "\n" == cli["text"], row["path"]
        assert {
            k: v for k, v in row.items() if k not in ("path", "provider", "error", "warnings", "settings")
        } == {k: v for k, v in cli["json"].items() if k != "source"}, row["path"]
        assert row["provider"] == "CPUExecutionProvider"
        assert row["segments"] and row["duration"] > 0


@pytest.mark.slow
def test_the_jsonl_equals_the_cli_file_by_file(ray_local, archive, cli_texts, tmp_path, capsys):
    folder, names = archive
    out = tmp_path / "results.jsonl"
    assert batch.main([str(folder), "-o", str(out), "--actors", "2"]) == 0
    rows = read_rows(out)
    check_equal(rows, names, cli_texts)
    long = next(r for r in rows if r["path"] == "a/long.wav")
    assert len(long["segments"]) > 1 and long["duration"] == pytest.approx(36, abs=0.01)
    # Run again: nothing to do, said in one note line, the output unchanged.
    before = out.read_bytes()
    assert batch.main([str(folder), "-o", str(out)]) == 0
    assert f"{CLIPS} of the {CLIPS} files are done already" in capsys.readouterr().err
    assert out.read_bytes() == before


@pytest.mark.slow
def test_decoding_options_do_what_they_do_for_transcribe(ray_local, archive, tmp_path, capsys):
    """--max-new-tokens, --no-repetition-guard and --max-chunk-seconds (once not taken at all):
    each row is the CLI's JSON for its file under the same options."""
    folder, names = archive
    picked = tmp_path / "picked"
    for name in [*names[:3], "a/long.wav"]:
        (picked / name).parent.mkdir(parents=True, exist_ok=True)
        (picked / name).symlink_to(folder / name)
    options = ["--max-new-tokens", "6", "--no-repetition-guard", "--max-chunk-seconds", "8"]
    cli_out = tmp_path / "cli"
    done = run_cli("transcribe", picked, "--recursive", "-f", "json", "--output-dir", cli_out, *options)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "results.jsonl"
    assert batch.main([str(picked), "-o", str(out), *options]) == 0, capsys.readouterr().err
    rows = read_rows(out)
    assert sorted(r["path"] for r in rows) == sorted([*names[:3], "a/long.wav"])
    for row in rows:
        cli = json.loads((cli_out / f"{Path(row['path']).stem}.json").read_text("utf-8"))
        assert {
            k: v for k, v in row.items() if k not in ("path", "provider", "error", "warnings", "settings")
        } == {k: v for k, v in cli.items() if k != "source"}, row["path"]
    assert rows[0]["settings"]["max_new_tokens"] == 6 and not rows[0]["settings"]["repetition_guard"]
    long = next(r for r in rows if r["path"] == "a/long.wav")
    assert len(long["segments"]) >= 5  # 36 s in chunks of at most 8
    assert {s["finish_reason"] for r in rows for s in r["segments"]} == {"length"}  # 6 tokens: cut


def test_options_that_would_fail_every_file_fail_before_ray(archive, tmp_path, capsys):
    """--word-timestamps with the demo model (no aligner) is one line, before any work, with
    transcribe's exit code (2, as for a usage error)."""
    folder, _ = archive
    out = tmp_path / "results.jsonl"
    assert batch.main([str(folder), "-o", str(out), "--word-timestamps"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (
        "error: --word-timestamps needs a forced aligner, which the built-in demo model lacks: pass "
        "--bundle DIR of a bundle exported with --aligner Qwen/Qwen3-ForcedAligner-0.6B"
    )
    assert not out.exists() or not out.read_bytes()


@pytest.mark.slow
def test_a_job_killed_half_way_resumes_with_every_file_once(
    ray_local, archive, cli_texts, tmp_path, capsys, monkeypatch
):
    folder, names = archive
    out = tmp_path / "results.jsonl"
    # A second driver on the module's Ray (--address: files read on this node, bytes to the actors).
    command = [sys.executable, "-m", "qwen_asr_edge.runtime.batch", str(folder), "-o", str(out)]
    temp = tmp_path / "temp"  # where SIGKILL leaves the run's folder (a kill no program outlives)
    temp.mkdir()
    child = subprocess.Popen(
        [*command, "--address", ray_local, "--actors", "1", "--batch-size", "1"],  # slow: to stop it
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "TMPDIR": str(temp)},
    )
    try:
        deadline = time.monotonic() + 120
        while not (out.exists() and len(out.read_bytes().splitlines()) >= 5):
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "no rows within 120 s"
            time.sleep(0.2)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=60)
        child.stderr.close()
    written = read_rows(out)
    assert 5 <= len(written) < CLIPS
    with out.open("a", encoding="utf-8") as f:  # as if killed in the middle of a line
        f.write('{"path": "a/long.wav", "language": "Eng')
    (left,) = temp.glob(batch.SCRATCH_PREFIX + "*")  # the killed run's copies; the next run's sweep
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    assert batch.main([str(folder), "-o", str(out), "--actors", "2"]) == 0
    err = capsys.readouterr().err
    assert f"removing {left}: left by a run that was killed" in err
    assert list(temp.glob(batch.SCRATCH_PREFIX + "*")) == []
    assert "its last line was cut off" in err
    assert f"{len(written)} of the {CLIPS} files are done already" in err
    rows = read_rows(out)
    assert rows[: len(written)] == written  # appended, never rewritten
    check_equal(rows, names, cli_texts)


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_stops_with_the_rows_so_far(ray_local, archive, tmp_path, stop):
    """Ctrl-C, or SIGTERM (`kill`: taken as Ctrl-C, though ray.init sets its own handler): the
    rows so far stay, one line says how many, exit 130."""
    folder, _ = archive
    out = tmp_path / "results.jsonl"
    before = temp_folders()
    command = [sys.executable, "-m", "qwen_asr_edge", "transcribe-many", str(folder), "-o", str(out)]
    child = subprocess.Popen(
        [*command, "--address", ray_local, "--actors", "1", "--batch-size", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (out.exists() and len(out.read_bytes().splitlines()) >= 3):
        assert child.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    child.send_signal(stop)
    err = child.communicate(timeout=60)[1]
    assert child.returncode == 130, err
    rows = read_rows(out)
    assert 3 <= len(rows) < CLIPS
    assert f"error: interrupted; {len(rows)} of {CLIPS} files done" in err
    assert temp_folders() <= before  # the killed actor's copy of its file went with the run's folder


def temp_folders() -> set[str]:
    """Our folders in the temp folder (transcribe-many's, and its actors' copies of files)."""
    return {p.name for p in Path(tempfile.gettempdir()).glob("qwen-asr-edge-*")}


def our_actors() -> list[int]:
    """The Ray actor processes this test process started (its descendants: Ray's workers are its
    raylet's children), never another user's."""
    found = subprocess.run(["pgrep", "-f", "ray::MapWorker"], capture_output=True, text=True)
    ours = []
    for pid in map(int, found.stdout.split()):
        ancestor = pid
        while ancestor > 1 and ancestor != os.getpid():
            try:
                stat = Path(f"/proc/{ancestor}/stat").read_text()
            except OSError:
                break
            ancestor = int(stat.rsplit(")", 1)[1].split()[1])  # the parent's pid
        if ancestor == os.getpid():
            ours.append(pid)
    return ours


@pytest.mark.slow
def test_a_lost_actor_fails_the_job_in_one_line_with_the_rows_so_far(ray_local, archive, tmp_path, capsys):
    """A local actor is not restarted (max_restarts=0): its loss ends the job, exit 1, and the rows
    written stay for the next run."""
    folder, _ = archive
    out = tmp_path / "results.jsonl"
    before = temp_folders()

    def kill_the_actor_after_some_rows():
        deadline = time.monotonic() + 120
        while not (out.exists() and len(out.read_bytes().splitlines()) >= 3) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in our_actors():
            os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_the_actor_after_some_rows)
    killer.start()
    code = batch.main([str(folder), "-o", str(out), "--actors", "1", "--batch-size", "1"])
    killer.join()
    err = capsys.readouterr().err
    assert code == 1, err
    rows = read_rows(out)
    assert 3 <= len(rows) < CLIPS
    assert "error: the Ray job failed (ActorDiedError: " in err
    assert f"{len(rows)} of {CLIPS} files done (run again" in err
    assert "Traceback" not in err
    assert temp_folders() <= before  # the killed actor's copy of its file is gone


@pytest.mark.slow
def test_bad_files_are_error_rows_and_the_rest_go_on(ray_local, tmp_path, capsys):
    english, german = (e["audio"] for e in demo_examples())
    (tmp_path / "good.wav").write_bytes(Path(english).read_bytes())
    (tmp_path / "garbage.wav").write_bytes(os.urandom(3000))
    (tmp_path / "empty.wav").write_bytes(b"")
    latin1 = os.fsdecode(b"caf\xe9.wav")  # a name that is not UTF-8, from an old archive
    (tmp_path / latin1).write_bytes(Path(english).read_bytes())
    listing = tmp_path / "files.txt"
    listing.write_bytes(
        b"# the archive\ngood.wav\ngarbage.wav\n\nempty.wav\nmissing.wav\ngood.wav\ncaf\xe9.wav\n"
    )
    out = tmp_path / "out.jsonl"
    assert batch.main([str(listing), "-o", str(out), "--actors", "1"]) == 1
    err = capsys.readouterr().err
    rows = {r["path"]: r for r in read_rows(out)}
    assert sorted(rows) == ["caf\\xe9.wav", "empty.wav", "garbage.wav", "good.wav", "missing.wav"]
    assert (
        rows["caf\\xe9.wav"]["error"]
        == "caf\\xe9.wav: its name is not UTF-8, which Ray Data cannot read; rename it"
    )
    assert rows["good.wav"]["error"] is None and rows["good.wav"]["text"] == "Tomorrow I will go shopping."
    assert rows["garbage.wav"]["error"].startswith("garbage.wav: not a readable audio file")
    assert rows["empty.wav"]["error"] == "empty.wav: file is empty"
    assert rows["missing.wav"]["error"] == "missing.wav: no such file"
    for row in ("garbage.wav", "empty.wav", "missing.wav"):
        assert f"error: {rows[row]['error']}" in err
    assert "4 of the 5 files failed" in err
    # Fixed, and tried again: each file still once, the failed ones now transcribed.
    (tmp_path / "garbage.wav").write_bytes(Path(german).read_bytes())
    (tmp_path / "empty.wav").write_bytes(Path(english).read_bytes())
    (tmp_path / "missing.wav").write_bytes(Path(english).read_bytes())
    kept = [line for line in out.read_text().splitlines() if '"good.wav"' in line or "caf" in line]
    (tmp_path / latin1).unlink()
    listing.write_bytes(listing.read_bytes().replace(b"caf\xe9.wav\n", b""))
    assert batch.main([str(listing), "-o", str(out), "--actors", "1", "--retry-failed"]) == 0
    rows = read_rows(out)
    assert sorted(r["path"] for r in rows) == [
        "caf\\xe9.wav",
        "empty.wav",
        "garbage.wav",
        "good.wav",
        "missing.wav",
    ]
    assert [r["path"] for r in rows if r["error"]] == ["caf\\xe9.wav"]  # no longer listed: left alone
    assert out.read_text().splitlines()[:2] == kept  # the rows not redone kept as they were, in order


@pytest.mark.slow
def test_each_file_s_warnings_are_in_its_row(ray_local, tmp_path, capsys):
    """Found by a new user: what `transcribe FILE` warns of (a truncated file, chunks with no
    transcript) was lost, the rows clean and exit 0. Each row has its own file's warnings, named by
    its path, even for two files of one name decoded in one batch; the run ends saying how many."""
    english = Path(demo_examples()[0]["audio"]).read_bytes()
    folder = tmp_path / "archive"
    for sub in ("a", "b"):
        (folder / sub).mkdir(parents=True)
    (folder / "a" / "talk.wav").write_bytes(english[: len(english) // 2])  # cut: truncated
    (folder / "b" / "talk.wav").write_bytes(english)  # the same name, whole
    sf.write(folder / "silence.wav", np.zeros(160000, np.float32), 16000)  # no transcript written
    speech, rate = sf.read(demo_examples()[0]["audio"], dtype="float32")
    sf.write(folder / "long.wav", np.tile(speech, 18), rate)  # over 30 s: read a block at a time
    data = (folder / "long.wav").read_bytes()
    (folder / "long.wav").write_bytes(data[: len(data) // 3])
    (folder / "garbage.wav").write_bytes(os.urandom(3000))
    out = tmp_path / "out.jsonl"
    assert batch.main([str(folder), "-o", str(out), "--actors", "1"]) == 1  # garbage.wav
    err = capsys.readouterr().err
    rows = {r["path"]: r for r in read_rows(out)}
    whole = sf.info(demo_examples()[0]["audio"]).duration
    assert rows["a/talk.wav"]["warnings"] == [
        f"a/talk.wav: truncated: the header announces {whole:.1f} s, the file decodes to "
        f"{rows['a/talk.wav']['duration']:.1f} s; transcribed what is there"
    ]
    (said,) = rows["long.wav"]["warnings"]
    assert said.startswith(f"long.wav: truncated: the header announces {whole * 18:.1f} s")
    (said,) = rows["silence.wav"]["warnings"]
    assert said.startswith("silence.wav: for 0.00-10.00 s the model wrote no transcript")
    assert rows["b/talk.wav"]["warnings"] == [] and rows["garbage.wav"]["warnings"] == []
    assert 'note: 3 files have warnings (their rows\' "warnings")' in err


@pytest.mark.slow
def test_a_full_disk_stops_the_job_in_one_line_and_a_new_run_goes_on(
    ray_local, archive, tmp_path, capsys, monkeypatch
):
    """No space left for a row (found by a new user: two chained tracebacks): one line saying so
    and how many files are done, exit 1; the rows before stay, and a run with room goes on."""
    import errno

    folder, names = archive
    picked = tmp_path / "picked"
    picked.mkdir()
    for name in names[:6]:
        (picked / Path(name).name).symlink_to(folder / name)
    out = tmp_path / "out.jsonl"

    class Filling:  # the output file, on a disk with room for three rows
        def __init__(self, f):
            self.f, self.rows = f, 0

        def write(self, text):
            self.rows += 1
            if self.rows > 3:
                self.f.write(text[:20])  # what a full disk keeps of it
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.f.write(text)

        def __getattr__(self, name):
            return getattr(self.f, name)

    real_open = batch.ResultsFile._open

    def filling_open(self):
        real_open(self)
        self._file = Filling(self._file)

    monkeypatch.setattr(batch.ResultsFile, "_open", filling_open)
    assert batch.main([str(picked), "-o", str(out), "--batch-size", "1"]) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: {out}: cannot be written (No space left on device); 3 of 6 files done (make room, then "
        "run again with the same --output to go on)"
    ]
    assert "Traceback" not in err
    monkeypatch.undo()
    assert batch.main([str(picked), "-o", str(out)]) == 0
    assert "its last line was cut off" in capsys.readouterr().err
    assert sorted(r["path"] for r in read_rows(out)) == sorted(Path(n).name for n in names[:6])


@pytest.mark.slow
def test_an_actor_that_cannot_load_stops_the_job_in_one_line(ray_local, tmp_path, capsys):
    """The provider is checked on the driver only for a local Ray; on a cluster (--address) the
    actors find out, and the driver says it as the CLI would."""
    folder = Path(demo_examples()[0]["audio"]).parent
    out = tmp_path / "out.jsonl"
    assert batch.main([str(folder), "-o", str(out), "--address", ray_local, "--providers", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "error: execution provider CUDAExecutionProvider is not available" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_an_output_that_is_not_results_is_refused_untouched(tmp_path, capsys):
    out = tmp_path / "notes.txt"
    out.write_text("my notes\n")
    folder = Path(demo_examples()[0]["audio"]).parent
    assert batch.main([str(folder), "-o", str(out)]) == 2
    assert "line 1 is not a result of transcribe-many" in capsys.readouterr().err
    assert out.read_text() == "my notes\n"
    out.write_text('{"config": true}')  # no newline: not a torn row either
    assert batch.main([str(folder), "-o", str(out)]) == 2
    assert "is not a JSONL file of transcribe-many results" in capsys.readouterr().err
    assert out.read_text() == '{"config": true}'


def test_a_run_resumed_with_other_settings_is_refused_untouched(tmp_path, capsys):
    """Rows record what their results depend on: going on with another --language, --context,
    decoding option or bundle would mix two kinds of results in one file. The same settings said
    otherwise (English for en) go on; rows of a version that recorded none are taken as they are."""
    folder = Path(demo_examples()[0]["audio"]).parent
    out = tmp_path / "out.jsonl"
    settings = batch.run_settings(batch.parse_args([str(folder), "-o", str(out), "--language", "en"]))
    keys = [e.key for e in batch.list_files(folder)]
    rows = [{"path": k, **dict.fromkeys(batch.ROW_FIELDS), "error": None, "settings": settings} for k in keys]
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = out.read_bytes()
    capsys.readouterr()
    for options, said in (
        (["--language", "de"], '--language: "English" there, "German" now'),
        (["--language", "en", "--max-new-tokens", "5"], "--max-new-tokens: null there, 5 now"),
        (["--language", "en", "--context", "Qwen"], '--context: "" there, "Qwen" now'),
        (["--language", "en", "--vad"], "--vad: false there, true now"),
    ):
        assert batch.main([str(folder), "-o", str(out), *options]) == 2
        err = capsys.readouterr().err
        assert f"error: {out}: line 1 was transcribed with other settings ({said}); run with the same" in err
        assert out.read_bytes() == before
    assert batch.main([str(folder), "-o", str(out), "--language", "English"]) == 0  # all done already
    assert f"{len(keys)} of the {len(keys)} files are done already" in capsys.readouterr().err
    out.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "settings"}) + "\n" for r in rows))
    assert batch.main([str(folder), "-o", str(out), "--language", "de"]) == 0
    assert out.read_bytes() != before and len(read_rows(out)) == len(keys)


@pytest.mark.slow
def test_an_output_is_not_resumed_from_another_source(ray_local, tmp_path, capsys, monkeypatch):
    """Found by a new user: `transcribe-many A -o r.jsonl`, then `transcribe-many B -o r.jsonl`
    said B's "a timer.wav" (another recording, the same path in B) was done, and kept A's text.
    Rows name files relative to their source: an output made from one source (its folder resolved,
    or its list file) is refused from another, untouched; the same one spelled otherwise goes on."""
    english, german = (Path(e["audio"]).read_bytes() for e in demo_examples())
    a, b = tmp_path / "A", tmp_path / "B"
    for folder, data in ((a, english), (b, german)):
        folder.mkdir()
        (folder / "a timer.wav").write_bytes(data)
    (b / "more.wav").write_bytes(english)
    out = tmp_path / "r.jsonl"
    assert batch.main([str(a), "-o", str(out), "--actors", "1"]) == 0
    before = out.read_bytes()
    listing = tmp_path / "files.txt"
    listing.write_text("A/a timer.wav\n")
    for source in (b, listing):  # another folder; a list of the same file is another source too
        capsys.readouterr()
        assert batch.main([str(source), "-o", str(out), "--actors", "1"]) == 2
        err = capsys.readouterr().err
        assert [line for line in err.splitlines() if not line.startswith("note:")] == [
            f"error: {out}: it holds files of {a.resolve()}, not of {source.resolve()} (its paths are "
            f"relative to their source); run on {a.resolve()} to go on, or name another --output"
        ]
        assert out.read_bytes() == before
    (tmp_path / "link").symlink_to(a)  # the same folder: relative, through a link, a trailing slash
    monkeypatch.chdir(tmp_path)
    for spelled in ("A", "link/", str(a)):
        assert batch.main([spelled, "-o", str(out)]) == 0
        assert "1 of the 1 files are done already" in capsys.readouterr().err
    assert out.read_bytes() == before
    # Rows of a version that recorded no source: taken as they are (which source is not known).
    rows = read_rows(out)
    for row in rows:
        del row["settings"]["source"]
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert batch.main(["A", "-o", str(out)]) == 0
    assert "1 of the 1 files are done already" in capsys.readouterr().err


def test_a_file_named_twice_in_a_list_is_one_entry(tmp_path, capsys):
    """a.wav, ./a.wav and its absolute path are one file (found by a new user: the second
    spelling took the first one's row, which then never came, and the job said nothing)."""
    (tmp_path / "audio").mkdir()
    for name in ("one.wav", "two.wav"):
        (tmp_path / "audio" / name).write_bytes(b"RIFF")
    listing = tmp_path / "files.txt"
    listing.write_text(
        f"audio/one.wav\n./audio/one.wav\n{tmp_path}/audio/one.wav\naudio/two.wav\naudio/two.wav\n"
    )
    entries = batch.list_files(listing)
    assert [e.key for e in entries] == ["audio/one.wav", "audio/two.wav"]
    assert "3 names in the list repeat an earlier one" in capsys.readouterr().err
    listing.write_text("audio/one.wav\naudio/one.wav\n")
    batch.list_files(listing)
    assert "note: 1 name in the list repeats an earlier one" in capsys.readouterr().err


def test_ray_data_s_file_errors_name_the_file(tmp_path):
    """A name with a tab or line break (Ray Data drops them: the whole job died with a traceback
    before) is refused up front; a file gone between that check and Ray's read is named in one line."""
    import ray.exceptions

    tab = batch.Entry("tab\\tx.wav", tmp_path / "tab\tx.wav")
    tab.path.write_bytes(b"RIFF")
    assert str(batch._unreadable(tab)) == (
        "tab\\tx.wav: its name holds a tab or line break, which Ray Data cannot read; rename it"
    )
    where = {str(tmp_path / "a.wav"): "a.wav"}
    gone = FileNotFoundError(str(tmp_path / "a.wav"))
    in_task = ray.exceptions.RayTaskError("ReadBinary", "...", gone).as_instanceof_cause()
    local = FileNotFoundError(f"local://{tmp_path}/a.wav")
    for error in (gone, in_task, local):
        assert (
            str(batch._vanished(error, where)) == "a.wav: no such file (removed or moved while the job ran)"
        )
    assert batch._vanished(FileNotFoundError(str(tmp_path / "other.wav")), where) is None
    assert batch._vanished(ray.exceptions.RayTaskError("f", "...", ValueError()), where) is None


def test_a_run_refused_before_any_row_leaves_no_folders(tmp_path, capsys):
    """The output's folders are made when it is opened; a run that then fails before its first
    row (here: no CUDA on this machine) removes them with the empty file (found by a new user)."""
    folder = Path(demo_examples()[0]["audio"]).parent
    out = tmp_path / "new" / "sub" / "out.jsonl"
    assert batch.main([str(folder), "-o", str(out), "--providers", "cuda"]) == 2
    assert "CUDAExecutionProvider is not available" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_sigterm_while_ray_starts_is_a_stop_like_any_other(tmp_path, capsys, monkeypatch):
    """ray.init's own SIGTERM handler exits with SystemExit(15) (found by a new user: exit 15, no
    message, Ray's agents left running): taken as Ctrl-C, with Ray shut down."""
    ray = pytest.importorskip("ray")
    shut = []

    def terminated(ray, args, level):
        raise SystemExit(signal.SIGTERM)

    monkeypatch.setattr(batch, "_init_ray", terminated)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "shutdown", lambda: shut.append(True))
    folder = Path(demo_examples()[0]["audio"]).parent
    out = tmp_path / "out.jsonl"
    assert batch.main([str(folder), "-o", str(out)]) == 130
    assert capsys.readouterr().err.splitlines()[-1] == (
        "error: interrupted; 0 of 2 files done (run again with the same --output to go on)"
    )
    assert shut and not out.exists()


def test_an_audio_file_or_nothing_is_a_usage_error(tmp_path, capsys):
    english = demo_examples()[0]["audio"]
    assert batch.main([english, "-o", str(tmp_path / "o.jsonl")]) == 2
    assert "is an audio file: transcribe-many takes a folder or a list file" in capsys.readouterr().err
    assert batch.main([str(tmp_path / "nowhere"), "-o", str(tmp_path / "o.jsonl")]) == 2
    assert "nowhere: no such folder or list file" in capsys.readouterr().err


def test_without_ray_it_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    folder = Path(demo_examples()[0]["audio"]).parent
    assert batch.main([str(folder), "-o", str(tmp_path / "o.jsonl")]) == 2
    assert "needs the [ray] extra" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


def test_outputs_that_cannot_take_results_fail_before_any_work(tmp_path, capsys):
    """Found by a new user: /dev/full as --output was read until the memory ran out, and an output
    that cannot be written failed after the whole job, its results lost behind a traceback."""
    import fcntl
    import socket

    folder = Path(demo_examples()[0]["audio"]).parent
    notes = tmp_path / "notes.txt"
    notes.write_text("a file, not a folder\n")
    for output, says in (
        ("/dev/null", "is not a regular file"),
        (str(notes / "out.jsonl"), f"cannot be written: {notes} is a file, not a folder"),
        (str(notes / "more" / "out.jsonl"), f"cannot be written: {notes} is a file, not a folder"),
    ):
        assert batch.main([str(folder), "-o", output]) == 2
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and says in errors[0] and "Traceback" not in err, err
    # Another run writing the same output (it holds the lock): refused, the file left as it was.
    out = tmp_path / "busy.jsonl"
    with open(out, "a") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        assert batch.main([str(folder), "-o", str(out)]) == 2
    assert "another transcribe-many is writing it" in capsys.readouterr().err
    assert out.read_text() == ""
    # A list that is a binary file, a cluster that is not there, a bundle that is not one: one
    # line each, and no output file left behind.
    assert batch.main(["/bin/true", "-o", str(tmp_path / "a.jsonl")]) == 2
    assert "is not a list of paths" in capsys.readouterr().err
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        # In a process of its own: this one may hold the module's local Ray, which main would use.
        done = run_cli(
            "transcribe-many", folder, "-o", tmp_path / "b.jsonl", "--address", f"127.0.0.1:{port}"
        )
    assert done.returncode == 2 and "no Ray cluster answers there" in done.stderr, done.stderr
    assert batch.main([str(folder), "-o", str(tmp_path / "c.jsonl"), "--bundle", str(tmp_path)]) == 2
    capsys.readouterr()
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".jsonl" and p.name != "busy.jsonl"]
