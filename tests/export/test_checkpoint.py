"""Checkpoint loading and the export command's errors: each names the file or tensor at fault."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from qwen_asr_edge.export.checkpoint import load_weights, parse_config, resolve_source  # noqa: E402
from qwen_asr_edge.export.synthetic import write_checkpoint  # noqa: E402
from qwen_asr_edge.runtime.errors import CheckpointError  # noqa: E402
from tests.support import run_cli  # noqa: E402


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("ck") / "small", "tiny", seed=1, tie=False)


def copy(src, tmp_path, name="ck"):
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


def export(*args):
    return run_cli("export", *args, timeout=600)


def test_reads_config_values_from_json_not_class_defaults(small):
    cfg = parse_config(small)
    assert cfg.audio.n_window == 50 and cfg.audio.n_window_infer == 800  # class defaults: 100 / 400
    assert cfg.audio_token_id == 151676 and cfg.text.rope_theta == 1e6  # defaults: 151646 / 5e6
    assert cfg.audio.tokens_per_chunk == 13 and cfg.audio.window_tokens == 104


def test_sharded_weights_load_the_same(small, tmp_path):
    sharded = write_checkpoint(tmp_path / "sharded", "tiny", seed=1, tie=False, shards=3)
    a, b = load_weights(small, parse_config(small)), load_weights(sharded, parse_config(sharded))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("missing", ["merges.txt", "chat_template.json", "preprocessor_config.json"])
def test_missing_file_is_named(small, tmp_path, missing):
    ck = copy(small, tmp_path)
    (ck / missing).unlink()
    with pytest.raises(CheckpointError, match=f"missing file\\(s\\): {missing}"):
        resolve_source(str(ck))


def test_tensors_the_model_does_not_have_are_named(small, tmp_path, caplog):
    """They were left out without a word: a checkpoint of another model exported as if it were this."""
    from safetensors.torch import load_file, save_file

    ck = copy(small, tmp_path)
    tensors = load_file(ck / "model.safetensors")
    tensors["thinker.model.layers.9.mlp.up_proj.weight"] = torch.zeros(2, 2, dtype=torch.bfloat16)
    save_file(tensors, ck / "model.safetensors")
    with caplog.at_level("WARNING", logger="qwen_asr_edge"):
        load_weights(ck, parse_config(ck))
    assert [r.getMessage() for r in caplog.records] == [
        f"{ck}: 1 tensor(s) that this model does not have are left out: "
        "thinker.model.layers.9.mlp.up_proj.weight"
    ]
    caplog.clear()
    load_weights(small, parse_config(small))
    assert not caplog.records


def test_missing_tensor_and_wrong_shape_are_named(small, tmp_path):
    from safetensors.torch import load_file, save_file

    ck = copy(small, tmp_path)
    tensors = load_file(ck / "model.safetensors")
    del tensors["thinker.model.layers.1.mlp.up_proj.weight"]
    save_file(tensors, ck / "model.safetensors")
    with pytest.raises(CheckpointError, match="tensor thinker.model.layers.1.mlp.up_proj.weight is missing"):
        load_weights(ck, parse_config(ck))

    ck2 = copy(small, tmp_path, "ck2")
    tensors = load_file(ck2 / "model.safetensors")
    tensors["thinker.audio_tower.conv_out.weight"] = torch.zeros(3, 3, dtype=torch.bfloat16)
    save_file(tensors, ck2 / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"conv_out.weight has shape \(3, 3\), expected \(32, 128\)"):
        load_weights(ck2, parse_config(ck2))


@pytest.mark.parametrize(
    ("text", "says"),
    [('{"model_type": "qwen3_asr", ', "not valid JSON"), ("[1, 2]", "not a JSON object (a list)")],
)
def test_a_broken_config_is_named(small, tmp_path, text, says):
    """A config.json cut mid-write was a JSONDecodeError traceback from resolve_source."""
    ck = copy(small, tmp_path)
    (ck / "config.json").write_text(text)
    for read in (resolve_source, lambda ck: parse_config(Path(ck))):
        with pytest.raises(CheckpointError, match=f"config.json: {re.escape(says)}"):
            read(str(ck))


def test_unknown_model_types(small, tmp_path):
    ck = copy(small, tmp_path)
    cfg = json.loads((ck / "config.json").read_text())
    cfg["model_type"] = "whisper"
    (ck / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="model_type 'whisper' is not a Qwen3-ASR model"):
        parse_config(ck)
    cfg["model_type"] = "qwen3_asr"
    cfg["thinker_config"]["model_type"] = "qwen3_asr_thinker"
    (ck / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="save_pretrained"):
        parse_config(ck)


@pytest.mark.slow
def test_export_cli_errors_are_one_line(small, tmp_path):
    ck = copy(small, tmp_path)
    (ck / "vocab.json").unlink()
    result = export(ck, tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: checkpoint {ck}: missing file(s): vocab.json"
    assert not (tmp_path / "out").exists()

    offline = run_cli(
        "export",
        "Nobody/no-such-model",
        tmp_path / "out2",
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert offline.returncode == 2
    assert "cannot fetch from the hub (HF_HUB_OFFLINE is set)" in offline.stderr
    assert "Traceback" not in offline.stderr

    (tmp_path / "exists").mkdir()
    result = export(small, tmp_path / "exists")
    assert result.returncode == 2 and "pass --force" in result.stderr


@pytest.mark.slow
def test_interrupted_export_leaves_nothing(small, tmp_path, monkeypatch):
    from qwen_asr_edge.export import write

    def boom(*args, **kwargs):
        raise RuntimeError("simulated crash while exporting the decoder")

    monkeypatch.setattr(write, "validate", boom)
    with pytest.raises(RuntimeError, match="simulated crash"):
        write.export_bundle(str(small), tmp_path / "bundle")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_sigterm_mid_export_leaves_nothing(small, tmp_path, sigint):
    """`kill` while the bundle is being written ends the command as Ctrl-C does: exit 130, one
    line, and no hidden staging folder left beside the output. Also as a background job of a
    script (`cmd &` starts it with SIGINT ignored), where SIGTERM must still stop it."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "out"
    out.mkdir()

    def ignore_sigint():
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    child = subprocess.Popen(
        [sys.executable, "-m", "qwen_asr_edge", "export", str(small), str(out / "bundle")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=ignore_sigint if sigint == "ignored" else None,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not any(out.iterdir()):  # the staging folder: the export is under way
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "no staging folder appeared"
            time.sleep(0.05)
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=300)
    finally:
        child.kill()
    assert child.returncode == 130, err
    assert err.strip().splitlines()[-1] == "error: interrupted"
    assert list(out.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("recipe", [[], ["--recipe", "int8"]], ids=["fp32", "int8"])
def test_an_export_killed_outright_is_cleaned_up_by_the_next(small, tmp_path, recipe):
    """SIGKILL (the OOM killer's signal) leaves the hidden staging folder, a whole bundle's size
    (with --recipe, the fp32 bundle's folder); the next export to the same output deletes it, says
    so, and writes the bundle."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "out"
    out.mkdir()
    command = [sys.executable, "-m", "qwen_asr_edge", "export", str(small), str(out / "bundle"), *recipe]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not any(out.iterdir()):
            assert child.poll() is None and time.monotonic() < deadline, "no staging folder appeared"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    finally:
        child.kill()
    (left,) = out.iterdir()
    assert left.name.startswith(".bundle.fp32-" if recipe else ".bundle.partial-")
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"removing {left}: left by a run that was killed" in done.stderr
    assert [p.name for p in out.iterdir()] == ["bundle"]


@pytest.mark.parametrize("shape,params", [("0.6B", 938.0e6), ("1.7B", 2349.2e6)])
def test_release_shapes_have_the_released_parameter_counts(shape, params):
    """The shape tables behind the generator and the loader, checked against the releases'
    parameter counts (all stored tensors, lm_head included)."""
    import math

    from qwen_asr_edge.export.checkpoint import CheckpointConfig, expected_shapes
    from qwen_asr_edge.export.synthetic import SHAPES

    s = SHAPES[shape]
    cfg = CheckpointConfig("asr", s.audio, s.text, 151676, 151669, 151670, [])
    total = sum(math.prod(v) for v in expected_shapes(cfg).values())
    assert total == pytest.approx(params, abs=0.05e6)
