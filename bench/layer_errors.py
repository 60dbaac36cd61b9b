"""Per-layer error of each quantization choice on realistic activations, one layer at a time.

    python -m bench.layer_errors [--shape 0.6B] [--layers 0,1,13,27] [--variants ...] [--work DIR]

Why one layer at a time: a deep stack of random weights amplifies any perturbation layer after
layer (measured: 1 % noise on every linear output of the 0.6B shape's realistic checkpoint moved
the top token at most positions), so end-to-end figures on random weights mostly measure that
amplification, not the recipe. What random weights do reproduce is what each layer is fed:
``--realistic`` checkpoints carry trained models' massive activations and outlier features, which
decide INT8 activation ranges and block errors. So: the text model's fp32 forward over a chat
prompt (``export.synthetic.text_forward``) records every chosen projection's input; each
weight matrix is quantized on its own as the recipe would (onnxruntime's quantizers, through
``quant.graphs``), run by onnxruntime on those inputs, and compared with the fp32 product.
Reported per variant: the relative error ||y_q - y|| / ||y|| (median and worst over layers, and
the worst layer), and the worst row's error (a token's own output: the sink token's massive
activations sit in one row).
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.bundles import checkpoint
from bench.utils import cpu, table

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# (label, how): how = ("nbits", bits, block), ("integer", reduce_range) for dynamic MatMulInteger or
# ("per-token", reduce_range) for quant.graphs.quantize_per_token.
VARIANTS = {
    "int8 MatMulNBits b32": ("nbits", 8, 32),
    "int8 MatMulNBits b64": ("nbits", 8, 64),
    "int8 MatMulNBits b128": ("nbits", 8, 128),
    "int8 MatMulInteger 7-bit": ("integer", True),
    "int8 per-token 7-bit": ("per-token", True),
    "int4 b32": ("nbits", 4, 32),
    "int4 b64": ("nbits", 4, 64),
    "int4 b128": ("nbits", 4, 128),
}


def layer_inputs(folder: Path, layers: list[int], head: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{projection name: (input (S, K) float32, weight (N, K) float32)} from an fp32 forward."""
    from qwen_asr_edge.export.checkpoint import load_weights, parse_config
    from qwen_asr_edge.export.synthetic import default_prompt, text_forward

    cfg = parse_config(folder)
    weights = load_weights(folder, cfg)
    wanted = {f"thinker.model.layers.{i}.{kind}.{n}" for i in layers for kind, names in
              (("self_attn", PROJECTIONS[:4]), ("mlp", PROJECTIONS[4:])) for n in names}  # fmt: skip
    seen: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def linear(name, x, weight):
        is_head = not name.startswith("thinker.model.layers.")
        if name in wanted or (head and is_head):
            seen["lm_head" if is_head else name.removeprefix("thinker.model.")] = (
                x.numpy().astype(np.float32),
                weight.numpy().astype(np.float32),
            )
        return x @ weight.T

    for _ in text_forward(weights, cfg, default_prompt(), linear):
        pass
    return seen


def quantized_session(weight: np.ndarray, how: tuple | None, work: Path):
    """An onnxruntime session computing y = x @ weight.T, the weight quantized as ``how`` says
    (None: fp32), 2 threads."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from qwen_asr_edge.quant.graphs import quantize_int8, quantize_nbits, quantize_per_token, quiet_quantizer

    node = helper.make_node("MatMul", ["x", "w"], ["y"], name="/layer/MatMul")
    graph = helper.make_graph(
        [node],
        "layer",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["M", weight.shape[1]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["M", weight.shape[0]])],
        [numpy_helper.from_array(np.ascontiguousarray(weight.T), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    with tempfile.TemporaryDirectory(dir=work) as tmp:  # the session holds the weights: files can go
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "layer.onnx"
        with quiet_quantizer():
            if how is None:
                onnx.save(model, str(dst), save_as_external_data=True)
            elif how[0] == "nbits":
                quantized = quantize_nbits(model, [node.name], how[1], how[2])
                onnx.save(quantized, str(dst), save_as_external_data=True)
            elif how[0] == "per-token":
                quantize_per_token(model, [node.name], how[1])
                onnx.save(model, str(dst), save_as_external_data=True)
            else:
                onnx.save(model, str(src), save_as_external_data=True)
                quantize_int8(src, dst, [node.name], ["MatMul"], how[1])
        return _session(dst)


def _session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    # Many sessions take turns here: idle pool threads spinning for work would steal the cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def layer_times(sessions: dict[str, list], width: int, rows: int, repeats: int) -> dict[str, float]:
    """Median ms of one layer's projections (each session in turn) on ``rows`` rows, per variant;
    the variants interleaved so that a noisy neighbour slows them alike."""
    x = np.random.default_rng(0).standard_normal((rows, width)).astype(np.float32)
    times: dict[str, list[float]] = {label: [] for label in sessions}
    for _ in range(repeats + 1):
        for label, layer in sessions.items():
            start = time.perf_counter()
            for session, k in layer:
                session.run(["y"], {"x": x[:, :k]})
            times[label].append((time.perf_counter() - start) * 1e3)
    return {label: float(np.median(t[1:])) for label, t in times.items()}  # the first run warms up


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", default="0.6B", choices=["0.6B", "1.7B", "tiny"])
    p.add_argument("--work", type=Path, default=Path(".cache/bench"))
    p.add_argument(
        "--layers", default="0,1,13,27", help="text layers to measure (default: first, second, middle, last)"
    )
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated; see VARIANTS")
    p.add_argument("--no-head", action="store_true", help="skip the output head (151936 x hidden)")
    p.add_argument(
        "--rows", type=int, default=400, help="prefill rows timed (a 30 s chunk: ~390 audio tokens)"
    )
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    unknown = [v for v in args.variants.split(",") if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    if not all(i.strip().isdigit() for i in args.layers.split(",")):
        p.error(f"--layers takes layer numbers separated by commas, not {args.layers!r}")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    folder = checkpoint(args.work, args.shape, realistic=True)
    from qwen_asr_edge.export.checkpoint import parse_config

    n_layers = parse_config(folder).text.layers
    layers = sorted({int(i) for i in args.layers.split(",")})
    if layers[-1] >= n_layers:
        p.error(f"the {args.shape} shape has text layers 0 to {n_layers - 1}")
    inputs = layer_inputs(folder, layers, head=not args.no_head)
    variants = {name: VARIANTS[name] for name in args.variants.split(",")}
    results: dict[str, dict[str, dict]] = {}
    timed_layer = f"layers.{layers[len(layers) // 2]}."  # a middle layer's 7 projections are timed
    timed: dict[str, list] = {}
    with tempfile.TemporaryDirectory() as tmp:
        timed["fp32"] = [
            (quantized_session(w, None, Path(tmp)), w.shape[1])
            for n, (_, w) in inputs.items()
            if n.startswith(timed_layer)
        ]
        for label, how in variants.items():
            results[label], timed[label] = {}, []
            for name, (x, weight) in inputs.items():
                y = x @ weight.T
                session = quantized_session(weight, how, Path(tmp))
                got = session.run(["y"], {"x": x})[0]
                rows = np.linalg.norm(got - y, axis=-1) / np.maximum(np.linalg.norm(y, axis=-1), 1e-30)
                results[label][name] = {
                    "relative_error": float(np.linalg.norm(got - y) / np.linalg.norm(y)),
                    "worst_row_error": float(rows.max()),
                    "input_max_over_median": float(np.abs(x).max() / np.median(np.abs(x))),
                }
                if name.startswith(timed_layer):
                    timed[label].append((session, weight.shape[1]))
            print(f"  {label}: done", flush=True)
        width = max(k for _, k in timed["fp32"])
        prefill = layer_times(timed, width, args.rows, args.repeats)
        decode = layer_times(timed, width, 1, args.repeats * 3)
    rows = []
    for label, per_layer in results.items():
        errors = {n: r["relative_error"] for n, r in per_layer.items()}
        worst = max(errors, key=errors.__getitem__)
        rows.append(
            [
                label,
                f"{np.median(list(errors.values())):.2%}",
                f"{errors[worst]:.2%}",
                worst,
                f"{max(r['worst_row_error'] for r in per_layer.values()):.2%}",
                f"{per_layer['lm_head']['relative_error']:.2%}" if "lm_head" in per_layer else "-",
                f"{prefill[label]:.1f} ({prefill[label] / prefill['fp32']:.2f})",
                f"{decode[label]:.2f} ({decode[label] / decode['fp32']:.2f})",
            ]
        )
    rows.append(
        ["fp32", "-", "-", "-", "-", "-", f"{prefill['fp32']:.1f} (1.00)", f"{decode['fp32']:.2f} (1.00)"]
    )
    machine = cpu()
    print(f"\n{args.shape} shape, realistic weights, text layers {layers}: {len(inputs)} projections, "
          f"{machine['model']} ({machine['level']})")  # fmt: skip
    layer = timed_layer[:-1]
    headers = ["variant", "median error", "worst layer error", "worst layer", "worst row error", "head error",
               f"{layer} ms, {args.rows} rows (/ fp32)", f"{layer} ms, 1 row (/ fp32)"]  # fmt: skip
    print(table(headers, rows))
    print(f"times: medians of {args.repeats} (1 row: {args.repeats * 3}), 2 threads, variants interleaved")
    record = {"shape": args.shape, "layers": layers, "cpu": machine, "results": results,
              "prefill_ms": prefill, "decode_ms": decode, "timed_layer": timed_layer}  # fmt: skip
    out = args.out or args.work / f"layer-errors-{args.shape}.json"
    out.write_text(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
