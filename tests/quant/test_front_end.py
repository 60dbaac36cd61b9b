"""The encoder's conv front end as a Scan over chunks (quant.front_end): the same output as the
batched graph for the clips users send (a single chunk shorter than 1 s, a partial last chunk,
a padded batch), the chain moved whole into the body, and graphs it cannot rewrite refused."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from qwen_asr_edge.quant.front_end import PER_CHUNK_OPS, SCAN_NAME, scan_front_end
from qwen_asr_edge.runtime import Transcriber
from tests.support import noise_clip


def encoder_outputs(model: onnx.ModelProto, features: np.ndarray, lens: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"input_features": features, "feature_lens": lens})


@pytest.fixture(scope="module")
def encoders(bundles) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    batched = onnx.load(str(bundles["untied-full"] / "encoder.onnx"))
    per_chunk = onnx.load(str(bundles["untied-full"] / "encoder.onnx"))
    scan_front_end(per_chunk)
    return batched, per_chunk


@pytest.mark.parametrize(
    "seconds",
    [[0.6], [3.3], [0.6, 2.5], [2.5, 0.6, 1.0]],
    ids=["one-short-chunk", "partial-last-chunk", "padded-batch", "batch-of-three"],
)
def test_per_chunk_front_end_gives_the_batched_output(bundles, encoders, seconds):
    """A clip of one chunk is convolved at its own width and a longer clip's last chunk at the
    full width (spec §3): the masks that do it are scanned with the chunks, so every audio token
    of every clip matches the batched graph (the arithmetic per chunk is the same)."""
    batched, per_chunk = encoders
    tr = Transcriber(bundles["untied-full"])
    features, lens = tr.features([noise_clip(s, seed=80 + i) for i, s in enumerate(seconds)])
    want, got = encoder_outputs(batched, features, lens), encoder_outputs(per_chunk, features, lens)
    np.testing.assert_array_equal(got[1], want[1])  # the audio tokens per clip
    for row, n in enumerate(want[1]):
        np.testing.assert_allclose(got[0][row, :n], want[0][row, :n], rtol=1e-5, atol=1e-6)


def test_the_whole_chain_moves_into_the_scan(encoders):
    batched, per_chunk = encoders
    count = lambda model, op: sum(n.op_type == op for n in model.graph.node)  # noqa: E731
    (scan,) = [n for n in per_chunk.graph.node if n.op_type == "Scan"]
    assert scan.name == SCAN_NAME
    body = [n.op_type for n in scan.attribute[0].g.node]
    assert [op for op in body if op in ("Conv", "Gelu")] == ["Conv", "Gelu"] * 3
    assert body.count("Mul") == 3, "the three column masks"
    assert count(batched, "Conv") == 3 and count(per_chunk, "Conv") == 0
    assert count(per_chunk, "Gelu") == count(batched, "Gelu") - 3, "the layers' GELUs stay outside"
    onnx.checker.check_model(per_chunk)
    with pytest.raises(ValueError, match="already a Scan"):
        scan_front_end(per_chunk)


def chain(extra_reader: str) -> onnx.ModelProto:
    """Conv -> ``extra_reader``(conv, per-chunk tensor) -> Transpose."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [2, 1, 1, 1], [1.0, 2.0])
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
            helper.make_node(extra_reader, ["c", "m"], ["y"], name="reader"),
            helper.make_node("Transpose", ["y"], ["out"], name="after"),
        ],
        "chain",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [3, 1, 4, 4]) for n in ("x", "m")],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        [w],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def test_what_it_cannot_rewrite_is_refused():
    assert "Add" not in PER_CHUNK_OPS
    model = chain("Mul")
    scan_front_end(model)  # a mask read by a Mul: scanned
    x, m = (np.random.default_rng(i).standard_normal((3, 1, 4, 4)).astype(np.float32) for i in (0, 1))
    want = np.transpose(np.concatenate([x, 2 * x], axis=1) * m)
    got = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": x, "m": m}
    )[0]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    with pytest.raises(ValueError, match="the front end reads 'm' per chunk, but not as a Mul's mask"):
        scan_front_end(_conv_then(["c", "m"]))
    model = chain("Mul")
    model.graph.output.append(helper.make_tensor_value_info("c", TensorProto.FLOAT, None))
    with pytest.raises(ValueError, match="must have one output"):
        scan_front_end(model)
    no_conv = chain("Mul")
    no_conv.graph.node[0].op_type = "Relu"
    with pytest.raises(ValueError, match="no Conv"):
        scan_front_end(no_conv)


def _conv_then(inputs: list[str]) -> onnx.ModelProto:
    """Conv -> Conv(c, m) (the per-chunk tensor read as a weight, not a mask) -> Transpose."""
    model = chain("Mul")
    model.graph.node[1].op_type = "Conv"
    model.graph.node[1].input[:] = inputs
    return model
