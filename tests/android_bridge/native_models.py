"""Tiny ONNX models for android_bridge's native layer tests (test_ort_bridge.c and OrtTest.kt).

``write_native_models(out_dir)`` writes them with onnx.helper; nothing here needs a real model:

  add.onnx    a, b float [n]            -> sum = a + b, prod = a * b (float [n])
  add.ort     the same in ORT format (for sessions from bytes with
              session.use_ort_model_bytes_directly)
  state.onnx  state, x float [2, 3]     -> new_state = 2 * state + x, total = sum(new_state) (float,
              rank 0): binding one tensor as state and new_state updates it in place
  kv.onnx     past float [1, 1, C, 2], new float [1, 1, S, 2], index int64 [1, 1, S, 2]
              -> present = ScatterElements(past, index, new, axis=2) (float [1, 1, C, 2]),
                 total = sum(present) (float, rank 0): the decoder's in-place KV-cache write
                 (export/modules/decoder.py, "portable"), where onnxruntime skips the copy of past
                 into present when both are one buffer
  cast.onnx   ids int64 [n]              -> ids32 int32 = ids, next int64 = ids + 1,
              half float16 = ids, positive bool = ids > 0
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper

OPSET = 17
IR_VERSION = 8  # onnxruntime >= 1.14 reads it, the Android AAR included


def _model(name: str, nodes, inputs, outputs, initializers=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=list(initializers))
    opsets = [helper.make_opsetid("", OPSET)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="qwen-asr-edge")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def _float(name: str, shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def add_model() -> onnx.ModelProto:
    return _model(
        "add",
        [helper.make_node("Add", ["a", "b"], ["sum"]), helper.make_node("Mul", ["a", "b"], ["prod"])],
        [_float("a", ["n"]), _float("b", ["n"])],
        [_float("sum", ["n"]), _float("prod", ["n"])],
    )


def state_model() -> onnx.ModelProto:
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    return _model(
        "state",
        [
            helper.make_node("Mul", ["state", "two"], ["doubled"]),
            helper.make_node("Add", ["doubled", "x"], ["new_state"]),
            helper.make_node("ReduceSum", ["new_state"], ["total"], keepdims=0),
        ],
        [_float("state", [2, 3]), _float("x", [2, 3])],
        [_float("new_state", [2, 3]), _float("total", [])],
        [two],
    )


def kv_model() -> onnx.ModelProto:
    return _model(
        "kv",
        [
            helper.make_node("ScatterElements", ["past", "index", "new"], ["present"], axis=2),
            helper.make_node("ReduceSum", ["present"], ["total"], keepdims=0),
        ],
        [
            _float("past", [1, 1, "capacity", 2]),
            _float("new", [1, 1, "steps", 2]),
            helper.make_tensor_value_info("index", TensorProto.INT64, [1, 1, "steps", 2]),
        ],
        [_float("present", [1, 1, "capacity", 2]), _float("total", [])],
    )


def cast_model() -> onnx.ModelProto:
    one = helper.make_tensor("one", TensorProto.INT64, [], [1])
    zero = helper.make_tensor("zero", TensorProto.INT64, [], [0])
    return _model(
        "cast",
        [
            helper.make_node("Cast", ["ids"], ["ids32"], to=TensorProto.INT32),
            helper.make_node("Add", ["ids", "one"], ["next"]),
            helper.make_node("Cast", ["ids"], ["half"], to=TensorProto.FLOAT16),
            helper.make_node("Greater", ["ids", "zero"], ["positive"]),
        ],
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["n"])],
        [
            helper.make_tensor_value_info("ids32", TensorProto.INT32, ["n"]),
            helper.make_tensor_value_info("next", TensorProto.INT64, ["n"]),
            helper.make_tensor_value_info("half", TensorProto.FLOAT16, ["n"]),
            helper.make_tensor_value_info("positive", TensorProto.BOOL, ["n"]),
        ],
        [one, zero],
    )


def _to_ort_format(onnx_path: Path, ort_path: Path) -> None:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(ort_path)
    options.add_session_config_entry("session.save_model_format", "ORT")
    ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


def write_native_models(out_dir: str | Path) -> Path:
    """Writes the models above into out_dir (created if needed); returns it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, build in (("add", add_model), ("state", state_model), ("kv", kv_model), ("cast", cast_model)):
        onnx.save(build(), out / f"{name}.onnx")
    _to_ort_format(out / "add.onnx", out / "add.ort")
    return out


if __name__ == "__main__":
    import sys

    print(write_native_models(sys.argv[1] if len(sys.argv) > 1 else "build/android_bridge/fixtures/native"))
