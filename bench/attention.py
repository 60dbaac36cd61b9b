"""Where a decode step's growth with context goes: onnxruntime's GroupQueryAttention alone.

    python -m bench.attention [--shape 0.6B] [--threads 1,2] [--contexts 50,500] [--repeats 60]
                              [--kv-heads 4,8,16]

A graph of one GroupQueryAttention per text layer, as the decoder runs them (rotary inside, the
cache bound in place as past and present, capacity 1024 rows), is timed for one new token at
each context, with the fp32 cache and with the int8 one (quant/kv_cache.py's per-channel scales).
Everything else a decode step does reads the same bytes at every context, so the attention
rows' difference is the step's growth (``bench.speed``'s "decode ms/token, context 50 / 500").
Medians of ``--repeats`` calls after 10 warm-up calls.

``--kv-heads`` re-times the fp32 cache with other KV head counts beside the shape's own (query
heads unchanged, so the arithmetic is the same in every row): a growth that follows the cache's
bytes is the memory's cost; one that stays with the query heads is the kernel's arithmetic.
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
        times = []
        for _ in range(10 + repeats):
            start = time.perf_counter()
            session.run_with_iobinding(io)
            times.append(time.perf_counter() - start)
        out[context] = float(np.median(times[10:]) * 1000)
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
        for int8 in (False, True):
            ms = measure(args.shape, threads, int8, contexts, args.repeats)
            first, last = ms[contexts[0]], ms[contexts[-1]]
            rows.append(
                [
                    threads,
                    "int8" if int8 else "fp32",
                    *(f"{ms[c]:.2f}" for c in contexts),
                    f"{last - first:+.2f}",
                ]
            )
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
