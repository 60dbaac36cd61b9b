"""Per-token INT8 (quant.graphs.quantize_per_token) on a graph of two linear layers that share
their input, as q/k/v or gate/up do: close to fp32, 7-bit weights, one quantization per input,
and each row's output independent of the rows batched with it."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from qwen_asr_edge.quant.graphs import quantize_per_token

K, N = 64, 48


def two_layers(seed: int = 0, opset: int = 21) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    weights = [(rng.standard_normal((K, N)) * 0.05).astype(np.float32) for _ in range(2)]
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w0"], ["y0"], name="/layer/q/MatMul"),
            helper.make_node("MatMul", ["x", "w1"], ["y1"], name="/layer/k/MatMul"),
        ],
        "two_layers",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "rows", K])],
        [helper.make_tensor_value_info(y, TensorProto.FLOAT, ["batch", "rows", N]) for y in ("y0", "y1")],
        [numpy_helper.from_array(w, f"w{i}") for i, w in enumerate(weights)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def run(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


@pytest.mark.parametrize("opset", [17, 21])  # ReduceMax's axes: an attribute before 18, an input since
def test_per_token_int8_is_close_to_fp32_with_seven_bit_weights(opset):
    fp32, model = two_layers(opset=opset), two_layers(opset=opset)
    quantize_per_token(model, ["/layer/q/MatMul", "/layer/k/MatMul"])
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("MatMulIntegerToFloat") == 2 and "MatMul" not in ops
    assert ops.count("QuantizeLinear") == 1, "the shared input is quantized once"
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    assert "w0" not in inits and "w1" not in inits, "the fp32 weights are gone"
    codes = [v for v in inits.values() if v.dtype == np.int8]
    assert len(codes) == 2 and all(c.min() >= -64 and c.max() <= 63 for c in codes)
    assert max(np.abs(c).max() for c in codes) == 63, "each column's largest weight uses the 7-bit range"

    x = np.random.default_rng(1).standard_normal((2, 5, K)).astype(np.float32)
    for want, got in zip(run(fp32, x), run(model, x), strict=True):
        assert np.linalg.norm(got - want) / np.linalg.norm(want) < 0.03


def test_each_row_is_quantized_on_its_own():
    """A row's output is the same alone and beside a row 1000x larger (one scale over the tensor,
    as DynamicQuantizeLinear takes, would flatten the small row to a few codes), and an all-zero
    row gives zeros, not NaN."""
    model = two_layers()
    quantize_per_token(model, ["/layer/q/MatMul", "/layer/k/MatMul"])
    rng = np.random.default_rng(2)
    row = rng.standard_normal((1, 1, K)).astype(np.float32)
    alone = run(model, row)[0]
    batch = np.concatenate([row, 1000 * rng.standard_normal((1, 1, K)).astype(np.float32)], axis=1)
    np.testing.assert_array_equal(run(model, batch)[0][:, :1], alone)
    zeros = run(model, np.zeros((1, 2, K), np.float32))[0]
    assert np.all(zeros == 0)


def test_a_weight_two_matmuls_read_is_quantized_once():
    model = two_layers()
    model.graph.node[1].input[1] = "w0"
    quantize_per_token(model, ["/layer/q/MatMul", "/layer/k/MatMul"])
    names = [i.name for i in model.graph.initializer]
    assert len(names) == len(set(names)) and names.count("w0_per_token_int8") == 1
    y0, y1 = run(model, np.random.default_rng(3).standard_normal((1, 3, K)).astype(np.float32))
    np.testing.assert_array_equal(y0, y1)


def test_only_constant_weight_matmuls_are_taken():
    model = two_layers()
    model.graph.node[0].input[1] = "x_t"  # a weight computed at run time (attention's own MatMuls)
    with pytest.raises(
        ValueError, match="/layer/q/MatMul: per-token INT8 needs a MatMul with a constant weight"
    ):
        quantize_per_token(model, ["/layer/q/MatMul"])
