"""build_bundle: the one way from a checkpoint to a bundle, fp32 or quantized, leaving nothing
behind on success or failure."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from qwen_asr_edge.export import build, write
from qwen_asr_edge.export.build import build_bundle
from qwen_asr_edge.runtime import load_bundle
from qwen_asr_edge.runtime.errors import (
    BundleError,
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
    with pytest.raises(InputError, match="block size"):
        build_bundle(checkpoints["tied"], tmp_path / "out", recipe="int4", block_size=48)
    assert [p.name for p in tmp_path.iterdir()] == ["exists"]


@pytest.mark.slow  # exports a bundle
def test_a_bundle_source_needs_a_recipe(checkpoints, tmp_path):
    fp32, _ = build_bundle(checkpoints["tied"], tmp_path / "fp32")
    with pytest.raises(InputError, match="already a bundle"):
        build_bundle(fp32, tmp_path / "copy")
    assert build.is_bundle(fp32) and not build.is_bundle(checkpoints["tied"])


@pytest.mark.slow  # exports a bundle
def test_validation_failure_is_the_package_error(checkpoints, tmp_path, monkeypatch):
    monkeypatch.setattr(write, "validate", lambda *a, **k: {"encoder": 0.5, "decoder_logits": 1e-6})
    with pytest.raises(ExportValidationError) as e:
        build_bundle(checkpoints["tied"], tmp_path / "fp32")
    err = e.value
    assert (err.graph, err.value, err.tolerance) == ("encoder", 0.5, write.TOLERANCE)
    assert "encoder" in str(err) and "5.00e-01" in str(err) and "1.00e-03" in str(err)
    assert list(tmp_path.iterdir()) == []
