"""Quantized bundles of a tiny checkpoint: every recipe transcribes, int8 keeps fp32's clear
decisions, the report is measured, and the int4 table survives ORT-format conversion."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import onnx
import pytest
import soundfile as sf
from onnx import numpy_helper

from qwen_asr_edge.quant import graphs
from qwen_asr_edge.quant.quantize import quantize_bundle
from qwen_asr_edge.quant.recipes import get_recipe
from qwen_asr_edge.runtime import Transcriber, TranscriptionOptions, load_bundle
from tests.support import clear_decisions, noise_clip, record_error, run_cli

RECIPES = ["int8", "int4", "int4-gptq", "fp16"]


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    folder = tmp_path_factory.mktemp("calibration")
    for i, seconds in enumerate([1.5, 4.0]):
        sf.write(folder / f"c{i}.wav", noise_clip(seconds, seed=40 + i), 16000)
    return folder


@pytest.fixture(scope="module")
def quantized(bundles, calibration, tmp_path_factory):
    root = tmp_path_factory.mktemp("quantized")
    out = {}
    for name in RECIPES:
        out[name], _ = quantize_bundle(
            bundles["untied-full"], root / name, get_recipe(name), calibration=calibration
        )
    out["tied-int4"], _ = quantize_bundle(bundles["tied-full"], root / "tied-int4", get_recipe("int4"))
    return out


@pytest.fixture(scope="module")
def quantized_realistic(bundles, calibration, tmp_path_factory):
    """Every recipe on the realistic tiny checkpoint (massive activations, outlier features)."""
    root = tmp_path_factory.mktemp("quantized-realistic")
    return {
        name: quantize_bundle(
            bundles["realistic-full"], root / name, get_recipe(name), calibration=calibration
        )[0]
        for name in RECIPES
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", [*RECIPES, "tied-int4"])
def test_every_recipe_transcribes_end_to_end(bundles, quantized, name):
    """Every greedy choice the quantized bundle makes (end to end, in a batch) is one that fp32,
    teacher-forced on those choices, ranks within 2e of its best, e being the recipe's largest
    logit error in its quality report (measured on other clips): if no logit moves by more than e,
    only tokens closer than 2e can swap. A typical token is ~4 below fp32's best on these weights,
    so a broken quantized path fails; fp16 must give fp32's tokens exactly."""
    tr = Transcriber(quantized[name])
    assert tr.precision == name.removeprefix("tied-")
    fp32 = Transcriber(bundles["tied-full" if name.startswith("tied-") else "untied-full"])
    e = json.loads((quantized[name] / "quality.json").read_text())["decoder"]["logits_max_abs"]
    clips = [noise_clip(2.0), noise_clip(6.0, seed=1)]
    options = TranscriptionOptions(max_new_tokens=12)
    results = tr.transcribe_batch(clips, options=options)
    for wav, result in zip(clips, results, strict=True):
        tokens = result.segments[0].tokens
        assert 1 <= len(tokens) <= 12
        audio = fp32.encode([wav]).row(0)
        logits = fp32.forced_logits(fp32.prompt_ids(int(audio.lengths[0])), audio, tokens[:-1])
        regret = logits.max(-1) - logits[np.arange(len(tokens)), tokens]
        assert regret.max() <= 2 * e, (name, regret.round(3).tolist(), e)
    if name == "fp16":
        want = fp32.transcribe_batch(clips, options=options)
        assert [r.segments[0].tokens for r in results] == [r.segments[0].tokens for r in want]


@pytest.mark.slow
def test_manifest_records_recipe_and_precision(quantized):
    m = load_bundle(quantized["int4"]).manifest
    assert m.recipe == "int4" and m.quantization["block_size"] == 64
    assert (m.graphs["encoder"].precision, m.graphs["decoder"].precision) == ("int8", "int4")
    # No int8 decoder layer; the int8 encoder is per-token, with 7-bit weights and no blocks.
    assert (m.quantization["int8_op"], m.quantization["encoder_int8_op"]) == (None, "per-token")
    assert m.quantization["int8_block_size"] is None and m.quantization["reduce_range"] is True
    int8 = load_bundle(quantized["int8"]).manifest.quantization
    assert (int8["int8_op"], int8["encoder_int8_op"]) == ("MatMulNBits", "MatMulNBits")
    assert (int8["int8_block_size"], int8["block_size"], int8["reduce_range"]) == (128, None, None)
    assert int8["encoder_front_end"] == "per-chunk"
    fp16 = load_bundle(quantized["fp16"]).manifest
    assert fp16.kv_cache.dtype == "float16" and fp16.quantization["int8_op"] is None
    # A GPU recipe: its front end stays one batched kernel per node.
    assert fp16.quantization["encoder_front_end"] == "batched"
    assert "Scan" not in {n.op_type for n in onnx.load(str(quantized["fp16"] / "encoder.onnx")).graph.node}
    assert {t.dtype for t in fp16.graphs["decoder"].inputs if t.name.startswith("past_")} == {"float16"}


@pytest.mark.slow
@pytest.mark.parametrize("name", RECIPES)
def test_no_activation_scale_spans_the_batch(quantized, name):
    """Dynamic INT8 (DynamicQuantizeLinear + MatMulInteger) takes one activation scale over the
    whole padded batch; every recipe's int8 MatMuls quantize each row of activations on its own:
    int8's as 8-bit MatMulNBits (accuracy_level 4: row by row, block by block), int4's encoder as
    per-token INT8 (MatMulIntegerToFloat on codes scaled by their own row's maximum)."""
    for graph in ("encoder", "decoder"):
        model = onnx.load(str(quantized[name] / f"{graph}.onnx"), load_external_data=False)
        ops = {n.op_type for n in model.graph.node}
        assert not ops & {"DynamicQuantizeLinear", "MatMulInteger", "DynamicQuantizeMatMul"}, (name, graph)
        nbits = [{a.name: a.i for a in n.attribute} for n in model.graph.node if n.op_type == "MatMulNBits"]
        bits, levels = {a["bits"] for a in nbits}, {a["accuracy_level"] for a in nbits}
        want = {"fp16": set(), "int8": {8}}.get(name, set() if graph == "encoder" else {4})
        assert bits == want, (name, graph, bits)
        assert levels <= {4}
        per_token = [n for n in model.graph.node if n.op_type == "MatMulIntegerToFloat"]
        assert bool(per_token) == (graph == "encoder" and name in ("int4", "int4-gptq")), (name, graph)
        reductions = [n for n in model.graph.node if n.name.endswith("/per_token/ReduceMax")]
        for n in reductions:
            axes = {a.name: list(a.ints) for a in n.attribute}.get("axes")
            axes = axes or numpy_helper.to_array(
                next(i for i in model.graph.initializer if i.name == n.input[1])
            )
            assert list(axes) == [-1] and {a.name: a.i for a in n.attribute}["keepdims"] == 1, n.name
        assert len(reductions) >= len(per_token) / 3  # q, k and v (or fc1 alone) share one input


@pytest.mark.slow
def test_legacy_int8_matmulinteger_weights_use_seven_bits(bundles, tmp_path):
    """int8_op="MatMulInteger" (dynamic INT8, batch-dependent) keeps reduce_range: CPUs without
    AVX-512 VNNI sum u8 x s8 products in saturating 16-bit pairs, which 7-bit weights cannot
    overflow (3 of 24 clear fp32 decisions flipped on AVX2 without it)."""
    from dataclasses import replace

    from onnx import numpy_helper

    recipe = replace(get_recipe("int8"), int8_op="MatMulInteger", encoder_int8_op="MatMulInteger")
    assert recipe.describe()["reduce_range"] is True and recipe.describe()["int8_block_size"] is None
    out = tmp_path / "decoder.onnx"
    graphs.quantize_graph(bundles["tied-full"] / "decoder.onnx", out, "decoder", recipe)
    model = onnx.load(str(out))
    assert "MatMulInteger" in {n.op_type for n in model.graph.node}
    weights = [
        numpy_helper.to_array(i)
        for i in model.graph.initializer
        if i.data_type == onnx.TensorProto.INT8 and i.name.endswith("_quantized") and len(i.dims) == 2
    ]
    assert weights
    peaks = [int(np.abs(w.astype(np.int16)).max()) for w in weights]
    assert max(peaks) == 64  # symmetric 7-bit: [-64, 64]; 8-bit weights reach 127


@pytest.mark.slow
def test_fp16_keeps_rotary_angles_in_fp32(quantized):
    """Position × frequency in fp16 is off by up to 0.25 rad past position 512: it must stay fp32."""
    import onnx

    from qwen_asr_edge.quant.graphs import rotary_angle_nodes

    model = onnx.load(str(quantized["fp16"] / "decoder.onnx"), load_external_data=False)
    names = set(rotary_angle_nodes(model))
    upstream = [n for n in model.graph.node if n.name in names]
    assert any(n.op_type == "Range" for n in upstream)
    casts = [a.i for n in upstream if n.op_type == "Cast" for a in n.attribute if a.name == "to"]
    assert onnx.TensorProto.FLOAT16 not in casts
    read = {i for n in upstream for i in n.input}
    assert {i.data_type for i in model.graph.initializer if i.name in read} <= {
        onnx.TensorProto.FLOAT,
        onnx.TensorProto.INT64,
    }


@pytest.mark.slow
def test_int4_graph_uses_the_intended_ops(quantized):
    model = onnx.load(str(quantized["tied-int4"] / "decoder.onnx"), load_external_data=False)
    ops = [n.op_type for n in model.graph.node]
    assert "MatMulNBits" in ops and "GatherBlockQuantized" in ops
    assert not [n for n in model.graph.node if n.op_type == "MatMul" and n.name.endswith("proj/MatMul")]
    gbq = next(n for n in model.graph.node if n.op_type == "GatherBlockQuantized")
    table = next(i for i in model.graph.initializer if i.name == gbq.input[0])
    assert table.data_type == onnx.TensorProto.UINT8
    assert {a.name: a.i for a in gbq.attribute}["bits"] == 4
    head = graphs.head_node(model)
    assert head.op_type == "MatMulNBits"  # the tied head is quantized too...
    reshape = next(n for n in model.graph.node if head.input[1] in n.output)
    assert reshape.op_type == "Reshape" and reshape.input[0] == gbq.input[0]  # ...from the table's own blocks
    assert head.input[2] == gbq.input[2]
    names = [i.name for i in model.graph.initializer]
    assert not [n for n in names if n.startswith("lm_head") and not n.endswith("_shape")]  # no second copy


@pytest.mark.slow
def test_encoder_conv_front_end_is_static_int8(bundles, quantized, tmp_path):
    """int8 and int4 quantize conv2d2 and conv2d3 to QLinearConv (per-channel 7-bit weights,
    activation ranges calibrated), leave conv2d1 (one input channel) fp32, record it, and the
    encoder's output stays as close to fp32's as with the fp32 front end."""
    model = onnx.load(str(quantized["int4"] / "encoder.onnx"))
    (scan,) = [n for n in model.graph.node if n.op_type == "Scan"]  # run per chunk (test_front_end.py)
    front_end = scan.attribute[0].g.node
    ops = {n.name: n.op_type for n in front_end}
    assert sorted(n for n, op in ops.items() if op == "QLinearConv") == [
        "/conv2d2/Conv_quant",
        "/conv2d3/Conv_quant",
    ]
    assert ops["/conv2d1/Conv"] == "Conv"
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in (n for n in front_end if n.op_type == "QLinearConv"):
        w = weights[node.input[3]]
        assert w.dtype == np.int8 and np.abs(w.astype(np.int16)).max() == 64  # symmetric 7-bit: exact on AVX2
        assert weights[node.input[4]].shape == (w.shape[0],)  # a scale per output channel
    recorded = load_bundle(quantized["int4"]).manifest.quantization
    assert (recorded["encoder_conv"], recorded["encoder_front_end"]) == ("int8", "per-chunk")

    fp32_conv, _ = quantize_bundle(
        bundles["untied-full"], tmp_path / "b", replace(get_recipe("int4"), encoder_conv="fp32")
    )
    ref, conv8, conv32 = (Transcriber(b) for b in (bundles["untied-full"], quantized["int4"], fp32_conv))
    deficit = {}  # 1 - the lowest cosine to fp32 over every audio token of both clips
    for name, tr in (("int8", conv8), ("fp32", conv32)):
        cos = []
        for wav in (noise_clip(3.0, seed=70), noise_clip(11.0, seed=71)):  # one at a time: no padding rows
            want, got = ref.encode([wav]).numpy()[0], tr.encode([wav]).numpy()[0]
            cos.append((got * want).sum(-1) / (np.linalg.norm(got, axis=-1) * np.linalg.norm(want, axis=-1)))
        deficit[name] = float(1 - np.concatenate(cos).min())
        record_error(f"encoder cosine deficit, int4 with an {name} conv front end", deficit[name])
    assert 0 < deficit["int8"] <= 2 * deficit["fp32"] + 1e-4, deficit


@pytest.mark.parametrize(
    ("recipe", "fp32_nodes", "bits"),
    [
        (replace(get_recipe("int8"), keep_fp32=("/model/layers/0/",)), "/model/layers/0/", {"": 8}),
        (replace(get_recipe("int4"), keep_fp32=("/model/layers/1/mlp/",)), "/model/layers/1/mlp/", {"": 4}),
        (replace(get_recipe("int4"), head="fp32"), "/lm_head/", {"": 4}),
        (replace(get_recipe("int4"), head="int8"), None, {"/lm_head/": 8, "": 4}),
    ],
    ids=["int8-keep-layer", "int4-keep-mlp", "int4-head-fp32", "int4-head-int8"],
)
def test_parts_a_recipe_leaves_unquantized_stay_so(bundles, tmp_path, recipe, fp32_nodes, bits):
    """keep_fp32 and per-part methods hold for the weight-only quantizer too: onnxruntime's takes
    every node of its op types unless excluded by name (nodes_to_include does not restrict it)."""
    dst = tmp_path / "decoder.onnx"
    graphs.quantize_graph(bundles["untied-full"] / "decoder.onnx", dst, "decoder", recipe)
    model = onnx.load(str(dst), load_external_data=False)
    linear = [
        n
        for n in model.graph.node
        if n.op_type in ("MatMul", "MatMulNBits") and ("proj" in n.name or "lm_head" in n.name)
    ]
    assert len(linear) == 9  # 2 layers of 4 (qkv, o, gate_up, down; export/modules/fused.py) and the head
    for node in linear:
        if fp32_nodes and node.name.startswith(fp32_nodes):
            assert node.op_type == "MatMul", node.name
        else:
            assert node.op_type == "MatMulNBits", node.name
            want = next(b for prefix, b in bits.items() if node.name.startswith(prefix))
            assert {a.name: a.i for a in node.attribute}["bits"] == want, node.name


def test_shared_int4_table_serves_lookup_and_head(bundles, tmp_path, monkeypatch):
    """The head reading the table's blocks scores like a head quantized on its own."""
    import onnxruntime as ort

    from qwen_asr_edge.runtime.decoding import prefill_feeds

    src = bundles["tied-full"] / "decoder.onnx"
    shared, separate = tmp_path / "shared.onnx", tmp_path / "separate.onnx"
    graphs.quantize_graph(src, shared, "decoder", get_recipe("int4"))
    monkeypatch.setattr(graphs, "share_tied_int4_table", lambda model: False)
    graphs.quantize_graph(src, separate, "decoder", get_recipe("int4"))
    assert (shared.parent / "shared.onnx.data").stat().st_size < (
        separate.parent / "separate.onnx.data"
    ).stat().st_size

    manifest = load_bundle(bundles["tied-full"]).manifest
    ids = np.array(
        [151644, 8948, 198, 151645, 198, 151644, 872, 198, 151669] + [151676] * 6 + [151670, 151645, 198]
    )
    embeds = np.random.default_rng(0).standard_normal((1, 6, manifest.model.hidden_size)).astype(np.float32)
    feeds = prefill_feeds(manifest, ids, embeds, np.array([6]), capacity=len(ids))
    a = ort.InferenceSession(str(shared)).run(["logits"], feeds)[0][0, 0]
    b = ort.InferenceSession(str(separate)).run(["logits"], feeds)[0][0, 0]
    assert np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b) > 0.999


@pytest.mark.slow
def test_int4_decoder_converts_to_ort_format_and_loads(quantized, tmp_path):
    import onnxruntime as ort

    src = tmp_path / "decoder.onnx"
    model = onnx.load(str(quantized["tied-int4"] / "decoder.onnx"))
    onnx.save(model, str(src))  # one file: the converter wants the weights inline
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "onnxruntime.tools.convert_onnx_models_to_ort",
            str(src),
            "--output_dir",
            str(tmp_path / "ort"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    ort_files = sorted((tmp_path / "ort").glob("*.ort"))
    assert ort_files
    for f in ort_files:
        ort.InferenceSession(str(f), providers=["CPUExecutionProvider"])


@pytest.mark.slow
def test_int8_keeps_fp32_decisions_where_the_margin_is_clear(bundles, quantized):
    """Teacher-forced on fp32's own greedy tokens: wherever fp32's top two logits are more than
    0.3 apart (int8 errs by about 0.1 on these weights), int8 must pick the same token."""
    fp32, int8 = Transcriber(bundles["untied-full"]), Transcriber(quantized["int8"])
    decided, agreed, _, clips = clear_decisions(fp32, int8, (1.0, 3.0, 7.0, 12.0), seed=50, margin=0.3)
    options = TranscriptionOptions(max_new_tokens=24)
    # every step clear: the whole greedy transcript must match
    whole = [
        int8.transcribe(wav, options=options).segments[0].tokens == tokens for wav, tokens, c in clips if c
    ]
    assert decided >= 10
    assert agreed == decided
    assert all(whole)


@pytest.mark.slow
def test_quality_report_holds_measured_figures(quantized):
    reports = {name: json.loads((quantized[name] / "quality.json").read_text()) for name in RECIPES}
    for name, r in reports.items():
        assert r["candidate"] == name and r["reference"] == "fp32"
        assert 0 < r["decoder"]["logits_cosine_min"] <= r["decoder"]["logits_cosine_mean"] <= 1 + 1e-9
        assert r["decoder"]["steps"] > 10
        assert "Random-weight" in r["note"]
        assert r["cpu"]["level"] in ("AVX-512 VNNI", "AVX-VNNI", "AVX-512", "AVX2") or not r["cpu"]["avx2"]
    assert load_bundle(quantized["int8"]).manifest.files["quality.json"]  # hashed like the rest
    assert reports["fp16"]["decoder"]["logits_cosine_min"] > 0.9999
    # Measured here: top-1 agreement fp16 100 %, int8 92 % (MatMulNBits, 8-bit blocks of 32; 93 % with
    # MatMulInteger's 7-bit weights, 98 % with its 8-bit ones), int4 46 %.
    assert reports["fp16"]["decoder"]["top1_agreement"] == 1.0
    assert reports["int8"]["decoder"]["top1_agreement"] >= 0.85 > reports["int4"]["decoder"]["top1_agreement"]
    assert reports["int8"]["decoder"]["logits_cosine_mean"] > reports["int4"]["decoder"]["logits_cosine_mean"]


@pytest.mark.slow
def test_quantizing_twice_is_refused(quantized, tmp_path):
    result = run_cli("quantize", quantized["int8"], tmp_path / "again", "--recipe", "int4", timeout=120)
    assert result.returncode == 2
    assert "is already quantized (recipe int8)" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "again").exists()


def test_bad_recipe_arguments(bundles, tmp_path):
    result = run_cli(
        "quantize",
        bundles["tied-full"],
        tmp_path / "x",
        "--recipe",
        "int4",
        "--block-size",
        "48",
        timeout=120,
    )
    assert (
        result.returncode == 2 and "--block-size must be one of 16, 32, 64, 128, 256; got 48" in result.stderr
    )


def test_gptq_leaves_stdout_to_the_bundle_path(bundles, calibration, tmp_path):
    """onnxruntime's GPTQ printed "\rProgress: [###...]" on stdout, before the path a script reads."""
    out = tmp_path / "gptq"
    result = run_cli(
        "quantize", bundles["untied-full"], out, "--recipe", "int4-gptq", "--calibration", calibration,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{out}\n" and "Progress" not in result.stderr


def test_an_unreadable_calibration_file_is_left_out_with_a_warning(tmp_path, caplog):
    """One empty file in a --calibration folder stopped the whole quantization."""
    from qwen_asr_edge.quant.quantize import calibration_audio
    from qwen_asr_edge.runtime.errors import InputError

    sf.write(tmp_path / "a.wav", noise_clip(1.0), 16000)
    (tmp_path / "b.wav").write_bytes(b"")
    with caplog.at_level("WARNING", logger="qwen_asr_edge"):
        audios = calibration_audio(tmp_path, 16000)
    assert len(audios) == 1 and audios[0].shape == (16000,)
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path / 'b.wav'}: file is empty; left out of the calibration"
    ]
    (tmp_path / "a.wav").unlink()
    with pytest.raises(InputError, match="no readable audio files in"):
        calibration_audio(tmp_path, 16000)


def test_block_size_sets_the_narrowest_weights_blocks():
    """--block-size is INT4's for int4 recipes and INT8's for int8 (it was silently ignored for
    int8); a recipe without blocks refuses it."""
    from qwen_asr_edge.runtime.errors import InputError

    assert get_recipe("int4", 32).block_size == 32 and get_recipe("int4", 32).int8_block_size == 128
    assert get_recipe("int4", 128).int8_block_size == 128  # unused: int4's encoder is per-token
    assert get_recipe("int8", 32).int8_block_size == 32
    assert get_recipe("int8", 32).describe()["int8_block_size"] == 32
    with pytest.raises(InputError, match="no blocks"):
        get_recipe("fp16", 64)
    with pytest.raises(InputError, match="--block-size must be one of"):  # the flag, not our field's name
        get_recipe("int8", 48)


def test_bundles_recorded_before_encoder_conv_are_rebuilt_for_it():
    """A manifest from before the setting records no encoder_conv: it had an fp32 front end, so
    today's int4 (INT8 convs) counts it as changed, and int4 with fp32 convs does not."""
    from qwen_asr_edge.quant.recipes import recipe_changes

    recorded = get_recipe("int4").describe()
    del recorded["encoder_conv"]
    assert recipe_changes(recorded, get_recipe("int4")) == "encoder_conv fp32 -> int8"
    assert recipe_changes(recorded, replace(get_recipe("int4"), encoder_conv="fp32")) == ""
    with pytest.raises(ValueError, match="goes with an int8 encoder"):
        replace(get_recipe("fp16"), encoder_conv="int8")


def test_int8_op_sets_every_int8_layer_and_older_int4_bundles_are_rebuilt():
    """--int8-op per-token makes int8's encoder and decoder per-token (no blocks, 7-bit
    weights); a recipe without int8 layers refuses it. An int4 bundle from before
    encoder_int8_op was recorded had 8-bit MatMulNBits in its encoder: stale for today's int4."""
    from qwen_asr_edge.quant.recipes import recipe_changes
    from qwen_asr_edge.runtime.errors import InputError

    fast = get_recipe("int8", int8_op="per-token")
    assert (fast.int8_op, fast.encoder_int8_op) == ("per-token", "per-token")
    described = fast.describe()
    assert (described["int8_block_size"], described["reduce_range"]) == (None, True)
    with pytest.raises(InputError, match="recipe fp16 has no int8 layers"):
        get_recipe("fp16", int8_op="per-token")
    with pytest.raises(
        InputError, match="unknown int8 op 'MatMulInteger'; choose from MatMulNBits, per-token"
    ):
        get_recipe("int8", int8_op="MatMulInteger")
    older = get_recipe("int4").describe()
    del older["encoder_int8_op"]
    older.update(int8_op="MatMulNBits", int8_block_size=128, reduce_range=None)
    assert recipe_changes(older, get_recipe("int4")) == (
        "encoder_int8_op MatMulNBits -> per-token, int8_block_size 128 -> None, int8_op MatMulNBits -> None, "
        "reduce_range None -> True"
    )


@pytest.mark.parametrize(("name", "stale"), [("int8", True), ("int4", True), ("fp16", False)])
def test_bundles_from_before_the_per_chunk_front_end_are_rebuilt(name, stale):
    """A manifest without encoder_front_end had the batched front end: stale for the CPU
    recipes, which now run it per chunk, current for fp16, which keeps it batched."""
    from qwen_asr_edge.quant.recipes import recipe_changes

    older = get_recipe(name).describe()
    del older["encoder_front_end"]
    want = "encoder_front_end batched -> per-chunk" if stale else ""
    assert recipe_changes(older, get_recipe(name)) == want
    if name == "fp16":  # its Scan body would be typed float32
        with pytest.raises(ValueError, match="an fp16 encoder keeps its front end batched"):
            replace(get_recipe(name), encoder_front_end="per-chunk")


def test_recipes_are_the_manifest_vocabulary():
    """The runtime offers --recipe from runtime.bundle.RECIPE_NAMES without importing quant."""
    from qwen_asr_edge.quant.recipes import RECIPES as DEFINED
    from qwen_asr_edge.runtime.bundle import RECIPE_NAMES

    assert tuple(DEFINED) == RECIPE_NAMES == tuple(RECIPES)


@pytest.mark.slow  # quantizes a bundle
def test_onnxruntime_chatter_is_filtered_not_reconfigured(bundles, tmp_path, caplog):
    """onnxruntime's quantizers log per node at INFO (their own logger, and the root logger);
    quantizing drops those records with a filter held for the call, and leaves every logger's
    level, handlers and filters as they were."""
    import logging
    import os

    import onnxruntime.quantization as ortq

    root, ort = logging.getLogger(), logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")
    caplog.set_level(logging.INFO)
    state = [(lg.level, list(lg.handlers), list(lg.filters)) for lg in (root, ort)]
    for recipe in ("int8", "int4"):
        quantize_bundle(bundles["tied-full"], tmp_path / recipe, get_recipe(recipe))
    folder = os.path.dirname(ortq.__file__)
    chatter = [r for r in caplog.records if r.name.startswith("onnxruntime") or r.pathname.startswith(folder)]
    assert chatter == []
    # The quality report's own transcriptions of generated audio (capped at 32 tokens, often no
    # text) are not the user's clips: the runtime's per-clip notes about them stay out of the log.
    assert [r.getMessage() for r in caplog.records if r.name == "qwen_asr_edge"] == []
    assert any(r.name == "qwen_asr_edge.quant" for r in caplog.records)  # our own progress still flows
    assert [(lg.level, list(lg.handlers), list(lg.filters)) for lg in (root, ort)] == state
    assert logging.getLogger("onnxruntime.quantization").level == logging.NOTSET


@pytest.mark.slow
@pytest.mark.parametrize("weights", ["unit-gain", "realistic"])
@pytest.mark.parametrize("name", ["fp32", *RECIPES])
def test_tokens_do_not_depend_on_batch_neighbours(bundles, quantized, quantized_realistic, name, weights):
    """A clip's tokens are the same alone and in any batch: with longer and shorter neighbours
    (padding), in another order, in batches of two and three. A per-tensor activation scale taken
    over the padded batch (dynamic INT8's DynamicQuantizeLinear) breaks this: on the realistic
    checkpoint it changed 89 of 112 int8 tokens, on the unit-gain one 26."""
    fp32, recipes = (
        (bundles["untied-full"], quantized)
        if weights == "unit-gain"
        else (bundles["realistic-full"], quantized_realistic)
    )
    tr = Transcriber(fp32 if name == "fp32" else recipes[name])
    clips = [noise_clip(1.0, seed=60), noise_clip(3.5, seed=61), noise_clip(8.0, seed=62)]

    def tokens(group: list[int]) -> dict[int, list[int]]:
        options = TranscriptionOptions(max_new_tokens=16, batch_size=len(group))
        results = tr.transcribe_batch([clips[i] for i in group], options=options)
        return {i: r.segments[0].tokens for i, r in zip(group, results, strict=True)}

    alone = {i: tokens([i])[i] for i in range(len(clips))}
    differed, compared = 0, 0
    for group in ([0, 1, 2], [2, 0], [1, 2]):
        for i, got in tokens(group).items():
            want = alone[i]
            compared += len(want)
            differed += sum(a != b for a, b in zip(got, want, strict=False)) + abs(len(got) - len(want))
    assert differed == 0, f"{name}: {differed} of {compared} tokens differ from the clip decoded alone"


def test_outputs_that_would_lose_something_are_refused(bundles, tmp_path):
    """An empty name (an unset variable, not the current folder), the source itself or a folder
    holding it, a folder that is not a bundle (even with --force), a path under a file: each a
    one-line refusal before any work, nothing touched."""
    import shutil

    from qwen_asr_edge.runtime.errors import OutputError

    source = tmp_path / "work" / "b"
    shutil.copytree(bundles["tied-full"], source)
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"jpg")
    (tmp_path / "afile").write_text("x")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    recipe = get_recipe("int8")
    for out, said in (
        ("", "empty output folder name"),
        (source, "would replace its own source"),
        (tmp_path / "work", "would replace its own source"),
        (tmp_path / "photos", "is not a bundle; --force replaces bundles only"),
        (tmp_path / "afile" / "sub", "is a file, not a folder"),
    ):
        with pytest.raises(OutputError, match=said):
            quantize_bundle(source, out, recipe, overwrite=True)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    result = run_cli("quantize", source, "", "--recipe", "int8", "--force", timeout=120)
    assert result.returncode == 2 and "an empty path" in result.stderr


def test_a_block_size_of_zero_is_refused_not_ignored():
    from qwen_asr_edge.runtime.errors import InputError

    for name in ("int8", "int4"):
        with pytest.raises(InputError, match="--block-size must be one of 16, 32, 64, 128, 256; got 0"):
            get_recipe(name, 0)
