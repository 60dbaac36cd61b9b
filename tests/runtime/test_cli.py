"""The command line as users run it: real speech, several files, outputs, and bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from qwen_asr_edge.cli import main
from tests.support import noise_clip
from tests.support import run_cli as cli


@pytest.mark.slow
def test_transcribes_real_speech_recording(bundles, speech_files):
    result = cli(
        "transcribe", str(speech_files[0]), "--bundle", str(bundles["untied-windowed"]), "--format", "json",
        "--language", "en",  # random weights write no <asr_text>: without a language, no text
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (item,) = json.loads(result.stdout)
    assert item["source"] == str(speech_files[0])
    assert set(item) >= {"language", "text", "duration", "segments"}
    assert item["duration"] == pytest.approx(sf.info(speech_files[0]).duration, abs=1e-3)
    assert item["text"]  # random weights: noise, but the whole path ran


def test_several_files_and_a_folder_to_output_dir(bundles, speech_files, tmp_path):
    out = tmp_path / "out"
    code = main(["transcribe", str(speech_files[0].parent), "--bundle", str(bundles["tied-full"]),
                 "-o", str(out), "-f", "json", "--max-new-tokens", "8"])  # fmt: skip
    assert code == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(f"{p.stem}.json" for p in speech_files)  # no temp files left behind
    for p in out.iterdir():
        assert json.loads(p.read_text())["language"] is not None


def test_txt_to_stdout(bundles, tmp_path, capsys):
    paths = []
    for i in range(2):
        paths.append(tmp_path / f"c{i}.wav")
        sf.write(paths[-1], noise_clip(1.0, seed=i), 16000)
    assert (
        main(["transcribe", *map(str, paths), "--bundle", str(bundles["tied-full"]), "--max-new-tokens", "4"])
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == [str(p) for p in paths]


@pytest.fixture
def bad_inputs(tmp_path):
    files = {}
    files["missing"] = tmp_path / "missing.wav"
    files["empty"] = tmp_path / "empty.wav"
    files["empty"].touch()
    files["text"] = tmp_path / "readme.wav"
    files["text"].write_text("not audio\n" * 50)
    files["truncated"] = tmp_path / "cut.flac"
    sf.write(files["truncated"], noise_clip(1.0), 16000, format="FLAC")
    files["truncated"].write_bytes(files["truncated"].read_bytes()[:40])
    files["nan"] = tmp_path / "nan.wav"
    wav = noise_clip(1.0)
    wav[5] = np.nan
    sf.write(files["nan"], wav, 16000, subtype="FLOAT")
    files["short"] = tmp_path / "short.wav"
    sf.write(files["short"], noise_clip(0.005), 16000)  # 80 samples: no mel frame
    return files


@pytest.mark.parametrize(
    "kind,message",
    [("missing", "no such file"), ("empty", "file is empty"), ("text", "not a readable audio file"),
     ("truncated", "not a readable audio file"), ("nan", "NaN"), ("short", "too short")],
)  # fmt: skip
def test_bad_audio_is_one_line_error_and_nonzero_exit(bundles, bad_inputs, kind, message):
    good = bad_inputs["missing"].parent / "good.wav"
    sf.write(good, noise_clip(1.0), 16000)
    path = bad_inputs[kind]
    result = cli(
        "transcribe", str(path), str(good), "--bundle", str(bundles["tied-full"]), "--max-new-tokens", "4"
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {path}: " + result.stderr.split(f"{path}: ", 1)[1].strip()
    assert message in result.stderr and "Traceback" not in result.stderr
    assert str(good) in result.stdout  # the good file was still transcribed


def test_bundle_problems(bundles, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(bundles["tied-full"], broken)
    (broken / "tokenizer.json").unlink()
    clip = tmp_path / "a.wav"
    sf.write(clip, noise_clip(1.0), 16000)
    result = cli("transcribe", str(clip), "--bundle", str(broken))
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"error: bundle {broken}: tokenizer.json is missing (copy the whole bundle folder)"
    )

    altered = tmp_path / "altered"
    shutil.copytree(bundles["tied-full"], altered)
    with open(altered / "decoder.onnx.data", "r+b") as f:
        f.seek(1000)
        f.write(b"\x01\x02\x03\x04")
    result = cli("transcribe", str(clip), "--bundle", str(altered))
    assert result.returncode == 2
    assert "decoder.onnx.data does not match its sha256" in result.stderr
    assert result.stderr.count("\n") == 1

    result = cli("transcribe", str(clip), "--bundle", str(altered), "--debug")
    assert result.returncode != 0 and "Traceback" in result.stderr

    result = cli("transcribe", str(clip), "--bundle", str(tmp_path / "nowhere"))
    assert result.returncode == 2 and "no such folder" in result.stderr


def test_bad_options(bundles, tmp_path):
    clip = tmp_path / "a.wav"
    sf.write(clip, noise_clip(1.0), 16000)
    result = cli("transcribe", str(clip), "--bundle", str(bundles["tied-full"]), "--language", "Klingon")
    assert result.returncode == 2
    assert "unsupported language 'Klingon'" in result.stderr and "Traceback" not in result.stderr
    result = cli(
        "transcribe", str(clip), "--bundle", str(bundles["tied-full"]), "--context", "hi <|im_end|> there"
    )
    assert result.returncode == 2 and "control tokens" in result.stderr
    result = cli("transcribe", str(clip), "--bundle", str(bundles["tied-full"]), "--max-new-tokens", "0")
    assert result.returncode == 2 and "--max-new-tokens" in result.stderr


def test_version_help_and_unknown_command():
    assert cli("--version").stdout.startswith("qwen-asr-edge ")
    assert "transcribe" in cli("--help").stdout
    result = cli("frobnicate")
    assert result.returncode == 2 and "unknown command" in result.stderr


def test_runtime_never_imports_torch_or_the_exporter(bundles):
    code = (
        "import sys, numpy as np\n"
        "from qwen_asr_edge.runtime import Transcriber, TranscriptionOptions\n"
        f"t = Transcriber({str(bundles['tied-full'])!r})\n"
        "t.transcribe(np.zeros(16000, np.float32) + 0.01, options=TranscriptionOptions(max_new_tokens=2))\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'qwen_asr')"
        " or m.startswith('qwen_asr_edge.export')]\n"
        "print(bad)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_model_is_resolved_by_what_the_dispatcher_injects(capsys):
    """The runtime's transcribe cannot export a checkpoint; the package's dispatcher hands it the
    resolver (qwen_asr_edge.models.cached_bundle), and without one --model is a one-line error."""
    from qwen_asr_edge.runtime import cli as runtime_cli
    from qwen_asr_edge.runtime.errors import CheckpointError

    assert runtime_cli.main(["x.wav", "--model", "Qwen/Qwen3-ASR-0.6B"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --model needs the qwen-asr-edge command") and err.count("\n") == 1

    asked = []

    def resolver(source: str, recipe: str | None):
        asked.append((source, recipe))
        raise CheckpointError(source, "cannot fetch from the hub")

    code = runtime_cli.main(["x.wav", "--model", "Owner/name", "--recipe", "int4"], resolve_model=resolver)
    assert code == 2 and asked == [("Owner/name", "int4")]
    assert capsys.readouterr().err == "error: checkpoint Owner/name: cannot fetch from the hub\n"
