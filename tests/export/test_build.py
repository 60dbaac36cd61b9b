"""build_bundle: the one way from a checkpoint to a bundle, fp32 or quantized, leaving nothing
behind on success or failure."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from qwen_asr_edge.export import build, write
from qwen_asr_edge.export.build import build_bundle
from qwen_asr_edge.runtime import load_bundle
from qwen_asr_edge.runtime.errors import (
    BundleError,
    ExportError,
    ExportValidationError,
    InputError,
    OutputExistsError,
)


@pytest.mark.slow  # exports a bundle
def test_fp32_goes_straight_to_out(checkpoints, tmp_path):
    path, report = build_bundle(checkpoints["tied"], tmp_path / "fp32")
    assert path == tmp_path / "fp32" and report is None
    assert load_bundle(path).manifest.recipe == "fp32"
    assert [p.name for p in tmp_path.iterdir()] == ["fp32"]


@pytest.mark.slow  # exports a bundle
def test_a_recipe_quantizes_and_drops_the_fp32_step(checkpoints, tmp_path):
    path, report = build_bundle(checkpoints["tied"], tmp_path / "int8", recipe="int8")
    assert load_bundle(path).manifest.recipe == "int8"
    assert {"encoder", "decoder"} <= set(report)
    assert [p.name for p in tmp_path.iterdir()] == ["int8"]  # the temp fp32 export is gone
    # A quantized bundle as the source is refused: only fp32 bundles are quantized.
    with pytest.raises(BundleError, match="already quantized"):
        build_bundle(path, tmp_path / "again", recipe="int4")
    assert [p.name for p in tmp_path.iterdir()] == ["int8"]


@pytest.mark.slow  # exports a bundle
def test_an_fp32_bundle_source_is_only_quantized(bundles, tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("re-exported a bundle")

    monkeypatch.setattr(write, "export_bundle", never)
    path, report = build_bundle(bundles["tied-full"], tmp_path / "int4", recipe="int4", block_size=32)
    manifest = load_bundle(path).manifest
    assert manifest.recipe == "int4" and manifest.quantization["block_size"] == 32 and report


@pytest.mark.slow  # exports a bundle
def test_a_failed_quantization_leaves_nothing(checkpoints, tmp_path, monkeypatch):
    from qwen_asr_edge.quant import quantize

    def boom(*args, **kwargs):
        raise RuntimeError("simulated crash while quantizing")

    monkeypatch.setattr(quantize, "quantize_bundle", boom)
    with pytest.raises(RuntimeError, match="simulated crash"):
        build_bundle(checkpoints["tied"], tmp_path / "int8", recipe="int8")
    assert list(tmp_path.iterdir()) == []


def test_bad_requests_fail_before_any_work(checkpoints, tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("exported although the request was bad")

    monkeypatch.setattr(write, "export_bundle", never)
    (tmp_path / "exists").mkdir()
    with pytest.raises(OutputExistsError, match="pass --force") as e:
        build_bundle(checkpoints["tied"], tmp_path / "exists")
    assert isinstance(e.value, FileExistsError) and e.value.path == str(tmp_path / "exists")
    with pytest.raises(InputError, match="unknown recipe 'int3'"):
        build_bundle(checkpoints["tied"], tmp_path / "out", recipe="int3")
    with pytest.raises(InputError, match="--block-size must be one of 16, 32, 64, 128, 256; got 48"):
        build_bundle(checkpoints["tied"], tmp_path / "out", recipe="int4", block_size=48)
    with pytest.raises(InputError, match="name a --recipe"):
        build_bundle(checkpoints["tied"], tmp_path / "out", block_size=32)
    with pytest.raises(InputError, match="nosuch: no such calibration folder"):
        build_bundle(
            checkpoints["tied"], tmp_path / "out", recipe="int4-gptq", calibration=tmp_path / "nosuch"
        )
    assert [p.name for p in tmp_path.iterdir()] == ["exists"]


@pytest.mark.slow  # exports a bundle
def test_a_bundle_source_needs_a_recipe(checkpoints, tmp_path):
    fp32, _ = build_bundle(checkpoints["tied"], tmp_path / "fp32")
    with pytest.raises(InputError, match="already a bundle"):
        build_bundle(fp32, tmp_path / "copy")
    assert build.is_bundle(fp32) and not build.is_bundle(checkpoints["tied"])


@pytest.mark.slow  # exports a bundle
def test_validation_failure_is_the_package_error(checkpoints, tmp_path, monkeypatch):
    off = lambda *a, **k: {"encoder": write.compare("encoder", np.full(3, 1.5), np.ones(3))}  # noqa: E731
    monkeypatch.setattr(write, "validate", off)
    with pytest.raises(ExportError) as e:
        build_bundle(checkpoints["tied"], tmp_path / "fp32")
    err = e.value
    assert isinstance(err, ExportValidationError)
    assert (err.graph, err.value, err.tolerance) == ("encoder", 0.5, write.TOLERANCE)
    assert "encoder" in str(err) and "5.00e-01" in str(err) and "1.00e-03" in str(err)
    assert "\n" not in str(err)
    assert list(tmp_path.iterdir()) == []


def test_validation_is_relative_to_the_outputs_scale():
    rng = np.random.default_rng(0)
    logits = 30 * rng.standard_normal((2, 7, 50))  # real checkpoints' logits reach +-30
    round_off = logits * (1 + 1e-6 * rng.standard_normal(logits.shape))
    assert np.abs(round_off - logits).max() > 0  # the absolute error grows with the scale...
    assert write.compare("decoder logits", round_off, logits, argmax=True) < 1e-5  # ...the relative not
    hidden = 3000 * rng.standard_normal((2, 5, 64))  # hidden channels in the thousands
    assert write.compare("encoder", hidden + 1e-2, hidden) < write.TOLERANCE  # abs 1e-2: fine at this scale
    with pytest.raises(ExportValidationError, match="encoder fails validation.*exceeds tolerance 1.00e-03"):
        write.compare("encoder", hidden * 1.01, hidden)
    with pytest.raises(ExportValidationError, match="NaN|nan"):
        write.compare("encoder", hidden * np.nan, hidden)


def test_validation_needs_the_same_top_class_except_for_ties():
    want = np.array([[1.0, 5.0, 2.0], [3.0, 3.0 - 1e-7, 0.0]])
    tie_broken = np.array([[1.0, 5.0, 2.0], [3.0 - 2e-7, 3.0, 0.0]])  # torch ranks them within round-off
    assert write.compare("aligner logits", tie_broken, want, argmax=True) < write.TOLERANCE
    want[0, 2] = 5.0 - 8e-3  # torch: class 1 by 8e-3, more than the tolerance (5e-3 at this scale)
    flipped = want.copy()
    flipped[0, 1:] += [-4.5e-3, 4.5e-3]  # each within the tolerance, yet the top class changes
    with pytest.raises(ExportValidationError, match="top class 2 at \\(0,\\) is not torch's 1"):
        write.compare("aligner logits", flipped, want, argmax=True)


@pytest.mark.slow  # exports an aligner
def test_checkpoints_with_large_activations_export(tmp_path, monkeypatch, vocab_dir):
    """An aligner whose final norm gain is scaled up 10000x: logits in the ten thousands, round-off of
    ~2e-2 in absolute terms, which the old absolute bound (1e-3) refused with a traceback."""
    from safetensors.torch import load_file, save_file

    from qwen_asr_edge.export.synthetic import write_checkpoint

    path = write_checkpoint(
        tmp_path / "aligner", "tiny", seed=7, peaky=True, vocab_dir=vocab_dir, aligner=True
    )
    weights = load_file(str(path / "model.safetensors"))
    norm = "thinker.model.norm.weight"
    weights[norm] = (weights[norm].float() * 10000).to(weights[norm].dtype)
    save_file(weights, str(path / "model.safetensors"), metadata={"format": "pt"})
    seen = []
    real_compare = write.compare

    def spy(graph, got, want, **options):
        seen.append((float(np.abs(np.asarray(got, float) - want).max()), float(np.abs(want).max())))
        return real_compare(graph, got, want, **options)

    monkeypatch.setattr(write, "compare", spy)
    out, _ = build_bundle(path, tmp_path / "bundle")
    assert load_bundle(out).manifest.model.kind == "aligner"
    (abs_error, scale), *_ = seen
    assert scale > 1e4 and abs_error > 1e-3  # the old absolute bound would have refused it


def test_windowed_encoder_runs_its_per_token_layers_on_the_clip_not_on_padded_windows(checkpoints):
    """Only attention is folded into 8 s windows: the MLP of every layer sees the clip's own token
    slots (a 12 s clip: 156, not 2 x 104), and the output has one row per slot."""
    import torch

    from qwen_asr_edge.export.checkpoint import load_weights, parse_config
    from qwen_asr_edge.export.modules import build_encoder

    cfg = parse_config(checkpoints["untied"])
    encoder = build_encoder(cfg, load_weights(checkpoints["untied"], cfg), "windowed")
    seen: list[int] = []
    for layer in encoder.layers:
        layer.fc1.register_forward_hook(lambda _m, args, _out: seen.append(args[0].shape[1]))
    frames = 1200  # 12 chunks of 100 frames
    features = torch.randn(1, cfg.audio.num_mel_bins, frames)
    with torch.no_grad():
        out, lens = encoder(features, torch.tensor([frames]))
    slots = frames // cfg.audio.chunk_frames * cfg.audio.tokens_per_chunk
    assert slots == 156 and slots % cfg.audio.window_tokens != 0
    assert seen == [slots] * len(encoder.layers)
    assert out.shape[1] == slots and int(lens[0]) == slots


def test_sibling_projections_are_one_matrix_product_with_the_same_outputs(checkpoints):
    """q/k/v (encoder and decoder) and gate/up (decoder) become one FusedLinear each; the fused
    modules compute what the separate layers did, to float rounding."""
    import torch

    from qwen_asr_edge.export.checkpoint import load_weights, parse_config
    from qwen_asr_edge.export.modules import TextDecoder, _load, build_decoder, build_encoder
    from qwen_asr_edge.export.modules.fused import FusedLinear

    cfg = parse_config(checkpoints["untied"])
    weights = load_weights(checkpoints["untied"], cfg)
    fused = build_decoder(cfg, weights)
    with torch.device("meta"):  # the separate layers, as training builds them
        separate = TextDecoder(cfg.text, cfg.audio_token_id)
    text = {k: v for k, v in weights.items() if k.startswith(("thinker.model.", "thinker.lm_head."))}
    _load(separate, text, "thinker.")
    assert isinstance(fused.model.layers[0].self_attn.qkv_proj, FusedLinear)
    assert isinstance(fused.model.layers[0].mlp.gate_up_proj, FusedLinear)
    assert not hasattr(fused.model.layers[0].self_attn, "q_proj")
    assert separate.model.layers[0].self_attn.qkv_proj is None

    ids = torch.randint(0, 100, (1, 7))
    audio = torch.zeros(1, 1, cfg.text.hidden_size)
    with torch.no_grad():
        want = separate.whole(ids, audio, torch.tensor([0]))
        got = fused.whole(ids, audio, torch.tensor([0]))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)

    encoder = build_encoder(cfg, weights, "windowed")
    assert all(isinstance(layer.self_attn.qkv_proj, FusedLinear) for layer in encoder.layers)


def test_exported_graphs_run_four_matrix_products_per_decoder_layer(bundles):
    """The decoder graph holds one qkv and one gate_up MatMul per layer and no separate q/k/v,
    gate or up products (a decode step's 7 products per layer became 4)."""
    import onnx

    decoder = onnx.load(str(bundles["untied-windowed"] / "decoder.onnx"), load_external_data=False)
    names = [n.name for n in decoder.graph.node if n.op_type == "MatMul"]
    layers = {n.split("/")[3] for n in names if n.startswith("/model/layers/")}
    for i in layers:
        mine = [n.split("/")[-2] for n in names if n.startswith(f"/model/layers/{i}/")]
        assert sorted(mine) == ["down_proj", "gate_up_proj", "o_proj", "qkv_proj"], mine
    encoder = onnx.load(str(bundles["untied-windowed"] / "encoder.onnx"), load_external_data=False)
    projections = {n.name.split("/")[-2] for n in encoder.graph.node if n.op_type == "MatMul"}
    assert "qkv_proj" in projections and not projections & {"q_proj", "k_proj", "v_proj"}


@pytest.mark.slow  # exports, quantizes and packs a bundle
def test_export_quantize_and_pack_into_a_folder_with_a_latin1_name(checkpoints, tmp_path):
    """onnx, onnxruntime (its quantizer and ORT-format converter too), safetensors and tokenizers
    take paths as UTF-8 text: each command failed under a Latin-1 folder name (export's reading of
    the checkpoint with one line, the others with a traceback). They read and write through a UTF-8
    link (the converter, which resolves links, in the temp folder), leave no link behind, and the
    bundles transcribe as the same bundle under a UTF-8 name."""
    import os
    import shutil
    import subprocess
    import sys

    from qwen_asr_edge.runtime.demo import demo_examples

    def run_cli(*args, env=None) -> subprocess.CompletedProcess:  # stdout has the raw path
        command = [sys.executable, "-m", "qwen_asr_edge", *map(str, args)]
        done = subprocess.run(command, capture_output=True, env=env, timeout=600)
        done.stdout, done.stderr = (b.decode("utf-8", "backslashreplace") for b in (done.stdout, done.stderr))
        return done

    folder = tmp_path / os.fsdecode(b"mod\xe8les")
    temp = tmp_path / "temp"  # where the links go, to see them gone
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    checkpoint = tmp_path / os.fsdecode(b"t\xe9l\xe9charg\xe9s") / "tied"
    shutil.copytree(checkpoints["tied"], checkpoint)
    steps = [
        ("export", checkpoint, folder / "fp32"),
        ("quantize", folder / "fp32", folder / "int8", "--recipe", "int8"),
        ("android-pack", folder / "int8", folder / "mobile"),
    ]
    for command, *args in steps:
        done = run_cli(command, *args, env=env)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (command, done.stderr)
        assert list(temp.glob("qwen-asr-edge-*")) == [], command  # (torch keeps its own files there)
    assert sorted(p.name for p in folder.iterdir()) == ["fp32", "int8", "mobile"]  # no staging left
    assert (folder / "mobile" / "decoder.ort").is_file()
    manifest = json.loads((folder / "fp32" / "manifest.json").read_text(encoding="utf-8"))
    source = manifest["model"]["source"]
    assert source.endswith("/t\\xe9l\\xe9charg\\xe9s/tied")  # the name as text, as messages show it
    plain = tmp_path / "int8"
    shutil.copytree(os.fsencode(folder / "int8"), os.fsencode(plain))
    clip = demo_examples()[0]["audio"]
    options = ["--max-new-tokens", "8", "--language", "en", "-f", "json"]
    moved = run_cli("transcribe", clip, "--bundle", folder / "int8", *options, env=env)
    original = run_cli("transcribe", clip, "--bundle", plain, *options)
    assert moved.returncode == original.returncode == 0, moved.stderr
    assert moved.stdout == original.stdout
