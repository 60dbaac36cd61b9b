"""The packaged app (scripts/build-app.sh): built once for this module, then run as on a machine
without Python: an environment holding only PATH=/usr/bin:/bin and a temporary HOME (no venv, no
PYTHONPATH or PYTHONHOME), from a temporary working directory. It must transcribe the demo examples
as the package does, and leave the exporter's stack (torch) out."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from qwen_asr_edge import __version__
from qwen_asr_edge.runtime.errors import MissingDependencyError
from tests.support import ROOT

APP = ROOT / "dist" / "qwen-asr-edge"
EXAMPLES = ROOT / "runtime" / "assets" / "demo" / "examples"


@pytest.fixture(scope="module")
def app() -> Path:
    """The app's executable, built by scripts/build-app.sh (its own venv; ~30 s from a fresh clone
    with pip's cache warm, ~15 s again)."""
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-app.sh")], capture_output=True, text=True, timeout=1200
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return APP / "qwen-asr-edge"


@pytest.fixture
def run_app(app, tmp_path):
    """Run the app with ARGS in a clean environment (what ``env -i PATH=/usr/bin:/bin HOME=...``
    gives) from ``tmp_path``."""
    home = tmp_path / "home"
    home.mkdir()

    def run(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
        env = {"PATH": "/usr/bin:/bin", "HOME": str(home)}
        return subprocess.run(
            [str(app), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout
        )

    return run


@pytest.mark.slow
@pytest.mark.parametrize("name", ["english.wav", "german.wav"])
def test_the_app_transcribes_the_examples_as_the_package_does(run_app, tmp_path, name):
    from qwen_asr_edge.runtime import Transcriber, demo_bundle

    shutil.copy(EXAMPLES / name, tmp_path / name)
    result = run_app("transcribe", name)
    assert result.returncode == 0, result.stderr
    expected = Transcriber(demo_bundle()).transcribe(EXAMPLES / name).text
    assert expected and result.stdout == expected + "\n"  # German's "ä" too, with no locale set
    assert "built-in demo model" in result.stderr


@pytest.mark.slow
def test_the_app_aligns_as_the_package_does(run_app, tmp_path, bundles):
    from tests.support import run_cli

    bundle = str(bundles["untied-full-aligner"])  # a tiny random checkpoint with the aligner
    shutil.copy(EXAMPLES / "english.wav", tmp_path / "english.wav")
    args = ["english.wav", "Tomorrow I will go shopping.", "--language", "English", "--bundle", bundle]
    result = run_app("align", *args, "-f", "tsv")
    assert result.returncode == 0, result.stderr
    args[0] = str(tmp_path / "english.wav")
    expected = run_cli("align", *args, "-f", "tsv")
    assert expected.returncode == 0 and expected.stdout and result.stdout == expected.stdout


@pytest.mark.slow
def test_the_app_says_its_version(run_app):
    result = run_app("--version")
    assert (result.returncode, result.stdout) == (0, f"qwen-asr-edge {__version__}\n")


@pytest.mark.slow
def test_a_bad_file_gets_one_error_line_and_exit_code_1(run_app, tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"not audio at all")
    result = run_app("transcribe", "bad.wav")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if not line.startswith("note: ")]
    assert errors == ["error: bad.wav: not a readable audio file (Format not recognised.)"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, extra",
    [
        (["export", "Qwen/Qwen3-ASR-0.6B", "out"], "export"),
        (["quantize", "bundle", "out", "--recipe", "int8"], "export"),
        (["transcribe", "english.wav", "--model", "Qwen/Qwen3-ASR-0.6B"], "export"),
        (["listen"], "mic"),
        (["transcribe", "english.wav", "--vad"], "vad"),
    ],
)
def test_what_the_app_leaves_out_says_so_in_one_line(run_app, tmp_path, args, extra):
    shutil.copy(EXAMPLES / "english.wav", tmp_path / "english.wav")
    result = run_app(*args)
    assert result.returncode == 2
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert f"needs the [{extra}] extra, which the packaged app leaves out" in line
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_the_app_holds_no_torch_and_stays_lean(app):
    internal = APP / "_internal"
    for left_out in ("torch", "onnx", "huggingface_hub", "transformers", "sympy"):
        assert not (internal / left_out).exists(), left_out
    assert (internal / "qwen_asr_edge" / "runtime" / "assets" / "demo" / "bundle" / "manifest.json").is_file()
    size = sum(f.stat().st_size for f in APP.rglob("*") if f.is_file())
    assert size < 160e6, f"{size / 1e6:.0f} MB"  # 129.7 MB measured (2026-11-30), with the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_app_serves_the_transcription_api_and_the_realtime_socket(app, run_app, tmp_path):
    """uvicorn loads its protocols by name, which the build must have collected: a real upload
    (python-multipart) and a real socket (websockets) through the frozen server."""
    if "serve" not in run_app("--help").stdout:
        pytest.skip("no serve command in this build (no [server] extra)")
    import soundfile as sf
    import soxr
    from openai import OpenAI
    from websockets.sync.client import connect

    from qwen_asr_edge.runtime import Transcriber, demo_bundle

    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home")}
    server = subprocess.Popen(
        [str(app), "serve", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.communicate()[0][-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
                    assert json.load(response)["status"] == "ok"
                    break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "the app's server did not answer /health in 60 s"
                time.sleep(0.5)
        english = EXAMPLES / "english.wav"
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
        with english.open("rb") as f:
            text = client.audio.transcriptions.create(model="qwen3-asr", file=f, response_format="text")
        assert text.strip() == Transcriber(demo_bundle()).transcribe(english).text

        wav, rate = sf.read(english, dtype="float32")
        pcm = (soxr.resample(wav, rate, 24000) * 32767).round().clip(-32768, 32767).astype("<i2")
        with connect(f"ws://127.0.0.1:{port}/v1/realtime", open_timeout=10) as socket_:
            assert json.loads(socket_.recv(timeout=30))["type"] == "session.created"
            audio = base64.b64encode(pcm.tobytes()).decode()
            socket_.send(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))
            socket_.send(json.dumps({"type": "input_audio_buffer.commit"}))
            while (event := json.loads(socket_.recv(timeout=60)))["type"] != (
                "conversation.item.input_audio_transcription.completed"
            ):
                assert event["type"] != "error", event
        assert event["transcript"].strip()
    finally:
        server.terminate()  # SIGTERM: requests in flight finish, exit 0, as from the package
        output = server.communicate(timeout=30)[0]
    assert server.returncode == 0 and "Traceback" not in output, output[-3000:]


def test_a_missing_extra_in_the_app_says_the_app_leaves_it_out(monkeypatch):
    assert str(MissingDependencyError("exporting x", "export")) == (
        "exporting x needs the [export] extra: pip install -e '.[export]' in a qwen-asr-edge checkout"
    )
    monkeypatch.setattr(sys, "frozen", True, raising=False)  # as PyInstaller's bootloader sets it
    assert str(MissingDependencyError("exporting x", "export")) == (
        "exporting x needs the [export] extra, which the packaged app leaves out: install the package: "
        "pip install -e '.[export]' in a qwen-asr-edge checkout"
    )
