"""Where a decode step's growth with context goes: onnxruntime's GroupQueryAttention alone.

    python -m bench.attention [--shape 0.6B] [--threads 1,2] [--contexts 50,500] [--repeats 60]
                              [--kv-heads 4,8,16]

A graph of one GroupQueryAttention per text layer, as the decoder runs them (rotary inside, the
cache bound in place as past and present, capacity 1024 rows), is timed for one new token at
each context, with the fp32 cache and with the int8 one (quant/kv_cache.py's per-channel scales).
Everything else a decode step does reads the same bytes at every context, so the attention
rows' difference is the step's growth (``bench.speed``'s "decode ms/token, context 50 / 500").
Medians of ``--repeats`` calls after 10 warm-up calls.

A third row times what our own decode attention from standard operators would cost with the int8
cache (not built into the decoder; this row says whether it is worth building): per layer the query
is quantized (``DynamicQuantizeLinear``), scored against the keys stored transposed
(``MatMulInteger``, u8 x s8, [kv heads, 2, 128] x [kv heads, 128, capacity]), masked, exponentiated
(max subtracted), the weights quantized to u8 on a fixed 1/255 grid and multiplied into the values
(``MatMulInteger`` again), then rescaled by the per-channel value scales and the weights' sum. The
cache holds 7-bit values ([-64, 63], as onnxruntime's quantizer's ``reduce_range``): without VNNI,
MLAS's u8 x s8 kernel adds products in pairs saturated to 16 bits, which full int8 values with u8
weights up to 255 overflow. Such a graph cannot write the cache in place, so it would read a
capacity that the runtime grows by doubling (the context rounded up to a power of two, at least 64)
rather than the fixed 1024 that ``GroupQueryAttention``'s in-place buffer needs; the new token's key
and value would be written by the runtime (not timed here).

``--kv-heads`` re-times the fp32 cache with other KV head counts beside the shape's own (query heads
unchanged, so the arithmetic is the same in every row): a growth that follows the cache's bytes is
the memory's cost; one that stays with the query heads is the kernel's arithmetic.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from bench.utils import cpu, table
from qwen_asr_edge.export.synthetic import SHAPES

CAPACITY = 1024


def attention_layers(layers: int, heads: int, kv_heads: int, head_dim: int, int8: bool) -> bytes:
    """The serialized graph: inputs q, k, v (1, 1, width), seqlens_k, total, cos, sin and each
    layer's past key/value; outputs each layer's attention and present key/value."""
    from onnx import TensorProto, helper, numpy_helper

    cache = TensorProto.INT8 if int8 else TensorProto.FLOAT
    info = helper.make_tensor_value_info
    inputs = [
        info("q", TensorProto.FLOAT, [1, 1, heads * head_dim]),
        info("k", TensorProto.FLOAT, [1, 1, kv_heads * head_dim]),
        info("v", TensorProto.FLOAT, [1, 1, kv_heads * head_dim]),
        info("seqlens_k", TensorProto.INT32, [1]),
        info("total", TensorProto.INT32, []),
        info("cos", TensorProto.FLOAT, [None, head_dim // 2]),
        info("sin", TensorProto.FLOAT, [None, head_dim // 2]),
    ]
    nodes, outputs, scales = [], [], []
    shape = [1, kv_heads, CAPACITY, head_dim]
    for i in range(layers):
        inputs += [info(f"past_key.{i}", cache, shape), info(f"past_value.{i}", cache, shape)]
        outputs += [
            info(f"attention.{i}", TensorProto.FLOAT, None),
            info(f"present_key.{i}", cache, shape),
            info(f"present_value.{i}", cache, shape),
        ]
        names = ["q", "k", "v", f"past_key.{i}", f"past_value.{i}", "seqlens_k", "total", "cos", "sin"]
        attributes = {"num_heads": heads, "kv_num_heads": kv_heads, "do_rotary": 1}
        if int8:
            names += ["", "", "", f"k_scale.{i}", f"v_scale.{i}"]  # inputs 12 and 13
            attributes |= {
                "k_quant_type": "PER_CHANNEL",
                "v_quant_type": "PER_CHANNEL",
                "kv_cache_bit_width": 8,
            }
            scale = np.full(kv_heads * head_dim, 0.05, np.float32)
            scales += [numpy_helper.from_array(scale, f"{kv}_scale.{i}") for kv in "kv"]
        nodes.append(
            helper.make_node(
                "GroupQueryAttention",
                names,
                [f"attention.{i}", f"present_key.{i}", f"present_value.{i}"],
                domain="com.microsoft",
                **attributes,
            )
        )
    graph = helper.make_graph(nodes, "attention", inputs, outputs, scales)
    opsets = [helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(graph, opset_imports=opsets).SerializeToString()


def median_ms(session, io, repeats: int) -> float:
    """Median ms of ``repeats`` bound calls after 10 warm-up calls."""
    times = []
    for _ in range(10 + repeats):
        start = time.perf_counter()
        session.run_with_iobinding(io)
        times.append(time.perf_counter() - start)
    return float(np.median(times[10:]) * 1000)


def matmul_integer_layers(layers: int, heads: int, kv_heads: int, head_dim: int) -> bytes:
    """The serialized standard-operator graph of the module docstring: inputs q (1, kv_heads,
    heads // kv_heads, head_dim) float32, mask (capacity,) float32 (0 or -inf), and each layer's
    key (1, kv_heads, head_dim, capacity) and value (1, kv_heads, capacity, head_dim) int8;
    outputs each layer's attention (1, kv_heads, group, head_dim) float32."""
    from onnx import TensorProto, helper, numpy_helper

    group = heads // kv_heads
    info = helper.make_tensor_value_info
    inputs = [
        info("q", TensorProto.FLOAT, [1, kv_heads, group, head_dim]),
        info("mask", TensorProto.FLOAT, ["capacity"]),
    ]
    rng = np.random.default_rng(0)
    constants = [
        numpy_helper.from_array(np.array([-1], np.int64), "last"),
        numpy_helper.from_array(np.array(1 / 255, np.float32), "grid"),
        numpy_helper.from_array(np.array(255, np.float32), "levels"),
        numpy_helper.from_array(np.array(0, np.uint8), "zero"),
    ]
    nodes, outputs = [], []
    for i in range(layers):
        inputs += [
            info(f"key.{i}", TensorProto.INT8, [1, kv_heads, head_dim, "capacity"]),
            info(f"value.{i}", TensorProto.INT8, [1, kv_heads, "capacity", head_dim]),
        ]
        outputs.append(info(f"attention.{i}", TensorProto.FLOAT, None))
        # Static per-channel scales (as quant/kv_cache.py's): the keys' folded into the query.
        for kv in ("k", "v"):
            scale = (0.05 + 0.01 * rng.random((1, kv_heads, 1, head_dim))).astype(np.float32)
            constants.append(numpy_helper.from_array(scale, f"{kv}_scale.{i}"))

        def x(name: str, i: int = i) -> str:  # one layer's names
            return f"{name}.{i}"

        nodes += [
            helper.make_node("Mul", ["q", x("k_scale")], [x("qs")]),
            helper.make_node("DynamicQuantizeLinear", [x("qs")], [x("q8"), x("q_scale"), x("q_zero")]),
            helper.make_node("MatMulInteger", [x("q8"), x("key"), x("q_zero")], [x("s32")]),
            helper.make_node("Cast", [x("s32")], [x("sf")], to=TensorProto.FLOAT),
            helper.make_node("Mul", [x("sf"), x("q_scale")], [x("scores")]),
            helper.make_node("Add", [x("scores"), "mask"], [x("masked")]),
            helper.make_node("ReduceMax", [x("masked"), "last"], [x("max")], keepdims=1),
            helper.make_node("Sub", [x("masked"), x("max")], [x("shifted")]),
            helper.make_node("Exp", [x("shifted")], [x("weights")]),
            helper.make_node("ReduceSum", [x("weights"), "last"], [x("sum")], keepdims=1),
            helper.make_node("Mul", [x("sum"), "levels"], [x("sum255")]),  # the u8 weights' unit
            helper.make_node("QuantizeLinear", [x("weights"), "grid", "zero"], [x("w8")]),
            helper.make_node("MatMulInteger", [x("w8"), x("value")], [x("o32")]),
            helper.make_node("Cast", [x("o32")], [x("of")], to=TensorProto.FLOAT),
            helper.make_node("Mul", [x("of"), x("v_scale")], [x("ov")]),
            helper.make_node("Div", [x("ov"), x("sum255")], [x("attention")]),
        ]
    graph = helper.make_graph(nodes, "attention", inputs, outputs, constants)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]).SerializeToString()


def measure_matmul_integer(shape: str, threads: int, contexts: list[int], repeats: int) -> dict[int, float]:
    """Median ms of one call (every layer) of ``matmul_integer_layers`` per context, its
    capacity the context rounded up to a power of two (at least 64)."""
    import onnxruntime as ort

    text = SHAPES[shape].text
    group = text.heads // text.kv_heads
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    model = matmul_integer_layers(text.layers, text.heads, text.kv_heads, text.head_dim)
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    q = rng.standard_normal((1, text.kv_heads, group, text.head_dim)).astype(np.float32)
    out = {}
    for context in contexts:
        capacity = max(64, 1 << (context - 1).bit_length())
        mask = np.where(np.arange(capacity) < context, 0, -np.inf).astype(np.float32)
        feeds = {"q": q, "mask": mask}
        keys = (1, text.kv_heads, text.head_dim, capacity)  # stored transposed
        values = (1, text.kv_heads, capacity, text.head_dim)
        for i in range(text.layers):
            feeds[f"key.{i}"] = rng.integers(-64, 64, keys, np.int8)
            feeds[f"value.{i}"] = rng.integers(-64, 64, values, np.int8)
        io = session.io_binding()  # bound once, as a runtime would between capacity changes
        for name, array in feeds.items():
            io.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(array))
        for i in range(text.layers):
            io.bind_output(f"attention.{i}")
        out[context] = median_ms(session, io, repeats)
    return out


def measure(
    shape: str, threads: int, int8: bool, contexts: list[int], repeats: int, kv_heads: int | None = None
) -> dict[int, float]:
    """Median ms of one call (every layer) per context; ``kv_heads`` overrides the shape's."""
    import onnxruntime as ort

    text = SHAPES[shape].text
    if kv_heads:
        text = replace(text, kv_heads=kv_heads)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    model = attention_layers(text.layers, text.heads, text.kv_heads, text.head_dim, int8)
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    io = session.io_binding()
    for name, heads in (("q", text.heads), ("k", text.kv_heads), ("v", text.kv_heads)):
        io.bind_cpu_input(name, rng.standard_normal((1, 1, heads * text.head_dim)).astype(np.float32))
    caches = []  # kept alive: bound in place
    for i in range(text.layers):
        for kv in ("key", "value"):
            shape_ = (1, text.kv_heads, CAPACITY, text.head_dim)
            cache = rng.integers(-100, 100, shape_).astype(np.int8) if int8 else rng.standard_normal(shape_)
            value = ort.OrtValue.ortvalue_from_numpy(
                np.ascontiguousarray(cache, np.int8 if int8 else np.float32)
            )
            caches.append(value)
            io.bind_ortvalue_input(f"past_{kv}.{i}", value)
            io.bind_ortvalue_output(f"present_{kv}.{i}", value)
        io.bind_output(f"attention.{i}")
    inv_freq = text.rope_theta ** (-np.arange(0, text.head_dim, 2) / text.head_dim)
    out = {}
    for context in contexts:
        io.bind_cpu_input("seqlens_k", np.array([context - 1], np.int32))
        io.bind_cpu_input("total", np.array(context, np.int32))
        angles = np.arange(context)[:, None] * inv_freq[None, :]
        io.bind_cpu_input("cos", np.cos(angles).astype(np.float32))
        io.bind_cpu_input("sin", np.sin(angles).astype(np.float32))
        out[context] = median_ms(session, io, repeats)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", default="0.6B", choices=list(SHAPES))
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    p.add_argument("--contexts", default="50,500", help="comma-separated context lengths (< 1024)")
    p.add_argument("--repeats", type=int, default=60)
    p.add_argument("--kv-heads", default="", help="comma-separated KV head counts to compare (fp32 cache)")
    args = p.parse_args(argv)
    contexts = [int(c) for c in args.contexts.split(",")]
    if not all(0 < c < CAPACITY for c in contexts):
        p.error(f"contexts must be from 1 to {CAPACITY - 1}")
    heads = SHAPES[args.shape].text.heads
    kv_heads = [int(k) for k in args.kv_heads.split(",") if k.strip().isdigit()]
    if args.kv_heads and (
        len(kv_heads) != len(args.kv_heads.split(",")) or any(k < 1 or heads % k for k in kv_heads)
    ):
        p.error(f"--kv-heads takes KV head counts that divide the {heads} query heads, not {args.kv_heads!r}")
    machine = cpu()
    text = SHAPES[args.shape].text
    print(f"{machine['model']} ({machine['level']})")
    print(
        f"{args.shape}: {text.layers} layers of GroupQueryAttention ({text.heads} query heads, "
        f"{text.kv_heads} KV heads of {text.head_dim}), one new token; medians of {args.repeats} calls"
    )
    rows = []
    for threads in (int(t) for t in args.threads.split(",")):
        for kind in ("fp32", "int8", "int8, MatMulInteger"):
            if kind.endswith("MatMulInteger"):
                ms = measure_matmul_integer(args.shape, threads, contexts, args.repeats)
            else:
                ms = measure(args.shape, threads, kind == "int8", contexts, args.repeats)
            first, last = ms[contexts[0]], ms[contexts[-1]]
            rows.append([threads, kind, *(f"{ms[c]:.2f}" for c in contexts), f"{last - first:+.2f}"])
    headers = ["threads", "KV cache", *(f"ms at context {c}" for c in contexts), "growth ms"]
    print(table(headers, rows))
    if args.kv_heads:
        threads = int(args.threads.split(",")[-1])
        print(f"\nfp32 cache, {text.heads} query heads, {threads} threads: growth against the extra cache")
        rows = []
        for count in kv_heads:
            ms = measure(args.shape, threads, False, contexts, args.repeats, count)
            growth = ms[contexts[-1]] - ms[contexts[0]]
            extra = text.layers * 2 * count * text.head_dim * 4 * (contexts[-1] - contexts[0]) / 1e6
            rows.append(
                [
                    count,
                    *(f"{ms[c]:.2f}" for c in contexts),
                    f"{growth:+.2f}",
                    f"{extra:.3g}",
                    f"{extra / growth:.1f}" if growth > 0 else "-",  # noise can beat a tiny cache
                ]
            )
        headers = [
            "KV heads",
            *(f"ms at context {c}" for c in contexts),
            "growth ms",
            "extra cache MB",
            "GB/s of cache",
        ]
        print(table(headers, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
