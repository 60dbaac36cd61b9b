"""The int8 KV cache (quant/kv_cache.py): GroupQueryAttention keeps its cache in int8 with
per-channel scales; decisions stay those of the same recipe with an fp32 cache where clear."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from qwen_asr_edge.quant.quantize import quantize_bundle
from qwen_asr_edge.quant.recipes import get_recipe, recipe_changes
from qwen_asr_edge.runtime import Transcriber, TranscriptionOptions, load_bundle
from qwen_asr_edge.runtime.errors import InputError
from tests.support import clear_decisions, run_cli


@pytest.fixture(scope="module")
def int8_kv(bundles, tmp_path_factory):
    """The int8 recipe on the peaky tiny checkpoint, with an fp32 and with an int8 KV cache."""
    root = tmp_path_factory.mktemp("kv")
    return {
        kv: quantize_bundle(bundles["untied-full"], root / kv, get_recipe("int8", kv_cache=kv))[0]
        for kv in ("fp32", "int8")
    }


@pytest.mark.slow
def test_manifest_graph_and_report_record_the_int8_cache(int8_kv):
    m = load_bundle(int8_kv["int8"]).manifest
    assert m.kv_cache.dtype == "int8" and m.quantization["kv_cache"] == "int8"
    assert {t.dtype for t in m.graphs["decoder"].inputs if t.name.startswith("past_")} == {"int8"}
    assert {t.dtype for t in m.graphs["decoder"].outputs if t.name.startswith("present.")} == {"int8"}
    model = onnx.load(str(int8_kv["int8"] / m.graphs["decoder"].file))
    gqa = [n for n in model.graph.node if n.op_type == "GroupQueryAttention"]
    assert len(gqa) == m.kv_cache.num_layers
    scales = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer if "_scale" in i.name}
    for node in gqa:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        assert attrs["kv_cache_bit_width"] == 8 and attrs["k_quant_type"] == b"PER_CHANNEL"
        k_scale, v_scale = scales[node.input[12]], scales[node.input[13]]
        assert k_scale.shape == v_scale.shape == (m.kv_cache.num_kv_heads * m.kv_cache.head_dim,)
        assert (k_scale > 0).all() and (v_scale > 0).all()
    assert load_bundle(int8_kv["fp32"]).manifest.kv_cache.dtype == "float32"
    report = json.loads((int8_kv["int8"] / "quality.json").read_text())
    assert 0 < report["decoder"]["top1_agreement"] <= 1


@pytest.mark.slow
def test_int8_cache_keeps_the_fp32_cache_decisions_where_the_margin_is_clear(int8_kv):
    """Teacher-forced on the fp32-cache bundle's greedy tokens: where its top two logits are more
    than 0.4 apart (the int8 cache moves a logit by 0.05-0.35 on these weights), the int8 cache
    picks the same token. End to end (decode steps reading the int8 cache), every greedy choice
    is one the fp32-cache bundle ranks within 2e of its best, e the largest teacher-forced error."""
    ref, cand = Transcriber(int8_kv["fp32"]), Transcriber(int8_kv["int8"])
    options = TranscriptionOptions(max_new_tokens=24)
    seconds = (1.0, 3.0, 7.0, 12.0)
    decided, agreed, e, clips = clear_decisions(ref, cand, seconds, seed=60, margin=0.4)
    assert decided >= 10 and agreed == decided
    assert 0 < e < 0.4
    wavs = [wav for wav, _, _ in clips]
    for wav, result in zip(wavs, cand.transcribe_batch(wavs, options=options), strict=True):
        tokens = result.segments[0].tokens
        audio = ref.encode([wav]).row(0)
        logits = ref.forced_logits(ref.prompt_ids(int(audio.lengths[0])), audio, tokens[:-1])
        regret = logits.max(-1) - logits[np.arange(len(tokens)), tokens]
        assert regret.max() <= 2 * e, (regret.round(3).tolist(), e)


def test_channel_scales_follow_the_cache_layout():
    """One GroupQueryAttention node whose key and value channels differ in size by orders of
    magnitude: with scales in the order quant.kv_cache computes them (head-major, kv_heads x
    head_dim), the int8 cache holds the fp32 cache to 1 % and the output to 5 %; the transposed
    order (the bug this guards against) errs by ~100 %."""
    import onnxruntime as ort

    heads, kv_heads, dim, capacity, rows = 4, 2, 64, 64, 40
    rng = np.random.default_rng(0)
    size = np.exp(rng.normal(0, 1.5, (2, kv_heads * dim))).astype(np.float32)
    q = rng.standard_normal((1, rows, heads * dim), np.float32)
    k, v = (rng.standard_normal((2, 1, rows, kv_heads * dim)) * size[:, None, None]).astype(np.float32)

    def run(scales=None):
        cache = TensorProto.FLOAT if scales is None else TensorProto.INT8
        inputs = ["q", "k", "v", "past_k", "past_v", "seqlens_k", "total"]
        attrs, inits = {}, []
        if scales is not None:
            inputs += [""] * 5 + ["k_scale", "v_scale"]
            attrs = dict(k_quant_type="PER_CHANNEL", v_quant_type="PER_CHANNEL", kv_cache_bit_width=8)
            inits = [
                numpy_helper.from_array(scales[0], "k_scale"),
                numpy_helper.from_array(scales[1], "v_scale"),
            ]
        node = helper.make_node(
            "GroupQueryAttention", inputs, ["out", "present_k", "present_v"], domain="com.microsoft",
            num_heads=heads, kv_num_heads=kv_heads, **attrs,
        )  # fmt: skip
        info = helper.make_tensor_value_info
        kv_shape = [1, kv_heads, capacity, dim]
        graph = helper.make_graph(
            [node], "gqa",
            [info("q", TensorProto.FLOAT, q.shape), info("k", TensorProto.FLOAT, k.shape),
             info("v", TensorProto.FLOAT, v.shape), info("past_k", cache, kv_shape),
             info("past_v", cache, kv_shape), info("seqlens_k", TensorProto.INT32, [1]),
             info("total", TensorProto.INT32, [1])],
            [info("out", TensorProto.FLOAT, q.shape), info("present_k", cache, kv_shape),
             info("present_v", cache, kv_shape)],
            inits,
        )  # fmt: skip
        opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
        session = ort.InferenceSession(
            helper.make_model(graph, opset_imports=opsets).SerializeToString(),
            providers=["CPUExecutionProvider"],
        )
        empty = np.zeros(kv_shape, np.float32 if scales is None else np.int8)
        feeds = {"q": q, "k": k, "v": v, "past_k": empty, "past_v": empty}
        feeds |= {"seqlens_k": np.array([rows - 1], np.int32), "total": np.array([rows], np.int32)}
        return session.run(None, feeds)

    out, cache_k, _ = run()
    # As quant.kv_cache.calibrate: max |x| over the rows of the (1, kv_heads, rows, dim) cache.
    scales = np.stack([np.abs(c[0][:, :rows]).max(axis=1).reshape(-1) for c in run()[1:]]) / 127
    got, q_cache_k, _ = run(scales)
    deq = q_cache_k[0][:, :rows] * scales[0].reshape(kv_heads, 1, dim)
    assert np.abs(deq - cache_k[0][:, :rows]).max() < 0.01 * np.abs(cache_k).max()
    assert np.abs(got - out).max() < 0.05 * np.abs(out).max()
    transposed = scales.reshape(2, kv_heads, dim).transpose(0, 2, 1).reshape(2, -1).copy()
    assert np.abs(run(transposed)[0] - out).max() > 0.5 * np.abs(out).max()


def test_int8_cache_is_refused_where_it_cannot_work(bundles, checkpoints, tmp_path):
    with pytest.raises(InputError, match="needs the GroupQueryAttention decoder"):
        quantize_bundle(bundles["untied-full-portable"], tmp_path / "a", get_recipe("int8", kv_cache="int8"))
    assert not (tmp_path / "a").exists()
    with pytest.raises(InputError, match="fp16 decoder keeps an fp16 KV cache"):
        get_recipe("fp16", kv_cache="int8")
    result = run_cli(
        "quantize", bundles["tied-full"], tmp_path / "b", "--recipe", "int4", "--kv-cache", "int4"
    )
    assert result.returncode == 2 and "--kv-cache: invalid choice" in result.stderr
    result = run_cli("export", checkpoints["tied"], tmp_path / "c", "--kv-cache", "int8")
    assert result.returncode == 2
    assert "--kv-cache, --int8-op and --calibration apply to a quantization" in result.stderr
    assert not (tmp_path / "c").exists()


def test_bundles_recorded_before_the_kv_cache_setting_are_not_stale():
    recorded = get_recipe("int4").describe()
    del recorded["kv_cache"]
    assert recipe_changes(recorded, get_recipe("int4")) == ""
    assert recipe_changes(recorded, get_recipe("int4", kv_cache="int8")) == "kv_cache fp32 -> int8"


@pytest.mark.slow
def test_android_pack_refuses_an_int8_cache_before_any_work(int8_kv, tmp_path):
    """The Kotlin runtime allocates float32 caches (MobileBundle.kt): refused up front, not at
    load time on the phone."""
    pytest.importorskip("onnx")
    from qwen_asr_edge.android_bridge.pack import pack_bundle
    from qwen_asr_edge.runtime.errors import BundleError

    with pytest.raises(BundleError, match="keeps its KV cache in int8"):
        pack_bundle(int8_kv["int8"], tmp_path / "mobile")
    assert not (tmp_path / "mobile").exists()
