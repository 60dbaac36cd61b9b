"""Speed and memory of full-size Qwen3-ASR bundles on this machine, against the official runtime.

    python -m bench.speed [--shape 0.6B|1.7B] [--recipes fp32,int8,int4] [--threads 1,2,4]

Generates a random-weight checkpoint of the real shape (random weights cost what real ones do),
exports it (GroupQueryAttention decoder), quantizes it, then measures each bundle in a fresh
process (bench/measure/ours.py; the official runtime in bench/measure/official.py), medians
over --repeats:

* encoder ms per audio second at 10 s and 120 s (windowed attention: should not grow);
* prefill ms for the 11 s clip's prompt, and decode ms per token at context 50 and 500;
* the floor: bytes a decode step must read (weights of every matmul and the head, plus the
  KV cache at that context) over the rate at which onnxruntime streams a 512 MB fp32 matrix
  through a matrix-vector product on the same threads, and step / floor;
* end to end (audio array in, text out) for an 11 s and a 60 s clip with exactly --tokens new
  tokens (stop ids ignored), as seconds and real-time factor, and peak RSS while doing the 11 s;
* batch 1, 4 and 8 (eight 11 s clips) in audio seconds per second, for --batch-recipe;
* the same clips through the official qwen-asr transformers backend (fp32 and bf16, same
  thread count, same token count), and the ratio of our end-to-end time to theirs.

Everything is measured and printed for each of --threads in turn (boards have 4 small cores,
phones 2 + 6; the default is the 2 of the machines this project is measured on).
Bundles under --work are reused while their format version and recipe settings are current.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
from pathlib import Path

import numpy as np

from bench.bundles import build, checkpoint
from bench.utils import cpu, dir_size, run_child, table

CLIP_SECONDS = (11.0, 60.0)


def memory_bandwidth_gbs(threads: int, size_mb: int = 512, repeats: int = 7) -> float:
    """Bytes of weights per second that onnxruntime streams through a matrix-vector product as
    large as a decoder, on ``threads`` threads: the read rate a decode step can at best reach.
    (A numpy copy is single-threaded and reports about half of it here.)"""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    k = 4096
    n = size_mb * (1 << 20) // 4 // k
    weight = numpy_helper.from_array(np.random.default_rng(0).random((k, n), dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "gemv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    x = np.ones((1, k), dtype=np.float32)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        sess.run(None, {"x": x})
        times.append(time.perf_counter() - t)
    return k * n * 4 / statistics.median(times[1:]) / 1e9


def bytes_per_step(bundle: Path, context: int) -> int:
    """Weights a decode step reads (every matmul's constant operands, the head included; the
    token table is only gathered from), plus the KV cache rows at ``context``."""
    import onnx

    model = onnx.load(str(bundle / "decoder.onnx"), load_external_data=False)
    sizes = {}
    for init in model.graph.initializer:
        ext = {e.key: e.value for e in init.external_data}
        sizes[init.name] = int(ext["length"]) if "length" in ext else len(init.raw_data)
    matmuls = {
        "MatMul",
        "MatMulNBits",
        "MatMulInteger",
        "MatMulIntegerToFloat",
        "Gemm",
        "DynamicQuantizeMatMul",
    }
    read = {i for n in model.graph.node if n.op_type in matmuls for i in n.input if i in sizes}
    manifest = json.loads((bundle / "manifest.json").read_text())["kv_cache"]
    kv = 2 * manifest["num_layers"] * manifest["num_kv_heads"] * manifest["head_dim"] * context
    return sum(sizes[i] for i in read) + kv * np.dtype(manifest["dtype"]).itemsize


def measure(args: argparse.Namespace, bundles: dict, recipes: list[str], threads: int) -> dict:
    """Every table at ``threads`` threads; returns the measurements."""
    bandwidth = memory_bandwidth_gbs(threads)
    print(f"memory bandwidth (fp32 matrix-vector product, {threads} threads): {bandwidth:.1f} GB/s")

    ours: dict[str, dict] = {}
    for name in recipes:
        options = ["--threads", threads, "--repeats", args.repeats, "--tokens", args.tokens]
        batches = ["--batches"] if name == args.batch_recipe else []
        ours[name] = run_child("bench.measure.ours", bundles[name].path, *options, *batches)
        print(f"{name}: {json.dumps(ours[name])}", flush=True)
    official: dict[str, dict] = {}
    if not args.no_official:
        ck = checkpoint(args.work, args.shape)
        for dtype in ("float32", "bfloat16"):
            official[dtype] = run_child(
                "bench.measure.official", ck, "--dtype", dtype,
                "--threads", threads, "--repeats", args.repeats, "--tokens", args.tokens,
            )  # fmt: skip
            print(f"official {dtype}: {json.dumps(official[dtype])}", flush=True)

    rtf = lambda seconds, audio: f"{seconds:.2f} s ({seconds / audio:.3f})"  # noqa: E731
    rows = []
    for name in recipes:
        m, path = ours[name], bundles[name].path
        floors = {ctx: bytes_per_step(path, ctx) / (bandwidth * 1e9) * 1000 for ctx in (50, 500)}
        rows.append(
            [
                name,
                f"{dir_size(path) / 1e6:.0f}",
                f"{m['load_s']:.1f}",
                f"{m['encoder_ms_per_s_10']:.1f} / {m['encoder_ms_per_s_120']:.1f}",
                f"{m['prefill_ms']:.0f}",
                f"{m['step_ms_50']:.1f} / {m['step_ms_500']:.1f} ({m['step_ms_500'] / m['step_ms_50']:.2f}x)",
                f"{floors[50]:.1f} / {floors[500]:.1f}",
                f"{m['step_ms_50'] / floors[50]:.2f} / {m['step_ms_500'] / floors[500]:.2f}",
                rtf(m["e2e_11_s"], 11),
                rtf(m["e2e_60_s"], 60),
                f"{m['peak_rss_gb']:.2f}",
            ]
        )
    headers = [
        "recipe",
        "bundle MB",
        "load s",
        "encoder ms per audio s, 10 s / 120 s",
        "prefill ms (11 s)",
        "decode ms/token, context 50 / 500",
        "floor ms 50 / 500",
        "step / floor",
        f"11 s, {args.tokens} tokens (RTF)",
        f"60 s, {args.tokens} tokens (RTF)",
        "peak RSS GB (11 s)",
    ]
    print(f"\n## qwen-asr-edge, {args.shape}, random weights, CPU, {threads} threads")
    print(f"medians of {args.repeats} runs each")
    print(table(headers, rows))

    if official:
        rows = []
        for dtype, m in official.items():
            rows.append(
                [
                    f"official qwen-asr {dtype}",
                    f"{m['first_token_11_s']:.2f}",
                    f"{m['step_ms_ctx']:.1f}",
                    rtf(m["e2e_11_s"], 11),
                    rtf(m["e2e_60_s"], 60),
                    f"{m['peak_rss_gb']:.2f}",
                    "",
                    "",
                ]
            )
        for name in recipes:
            m = ours[name]
            ratio = lambda key, m=m: " / ".join(f"{m[key] / o[key]:.2f}" for o in official.values())  # noqa: E731
            rows.append(
                [
                    f"qwen-asr-edge {name}",
                    f"{m['first_token_11_s']:.2f}",
                    f"{m['step_ms_50']:.1f}",
                    rtf(m["e2e_11_s"], 11),
                    rtf(m["e2e_60_s"], 60),
                    f"{m['peak_rss_gb']:.2f}",
                    ratio("e2e_11_s"),
                    ratio("e2e_60_s"),
                ]
            )
        headers = [
            "runtime",
            "first token s (11 s)",
            "decode ms/token",
            f"11 s, {args.tokens} tokens (RTF)",
            f"60 s, {args.tokens} tokens (RTF)",
            "peak RSS GB",
            "11 s ours/official fp32 / bf16",
            "60 s ours/official fp32 / bf16",
        ]
        print("\n## against the official runtime (same checkpoint, clips, threads and token count)")
        print(table(headers, rows))

    m = ours.get(args.batch_recipe)
    if m and "batch_1_audio_s_per_s" in m:
        one = m["batch_1_audio_s_per_s"]
        rows = [
            [str(b), f"{m[f'batch_{b}_audio_s_per_s']:.1f}", f"{m[f'batch_{b}_audio_s_per_s'] / one:.2f}"]
            for b in (1, 4, 8)
        ]
        clips = f"eight 11 s clips, {args.tokens} tokens each"
        print(f"\n## batching, {args.batch_recipe}, {threads} threads: {clips}")
        print(table(["batch", "audio s per s", "vs batch 1"], rows))

    return {"bandwidth_gbs": bandwidth, "ours": ours, "official": official}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", default="0.6B", choices=["0.6B", "1.7B", "tiny"])
    p.add_argument("--recipes", default="fp32,int8,int4")
    p.add_argument("--batch-recipe", default="int4", help="the recipe whose batch throughput is measured")
    p.add_argument("--threads", default="2", help="comma-separated thread counts, each measured in turn")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--tokens", type=int, default=40, help="new tokens per clip, stop ids ignored")
    p.add_argument("--no-official", action="store_true", help="skip the official qwen-asr runs")
    p.add_argument("--work", type=Path, default=Path(".cache/bench"))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("onnxscript", "onnx_ir", "torch"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    started = time.perf_counter()

    recipes = args.recipes.split(",")
    bundles = build(args.work, args.shape, recipes)
    machine = cpu()
    print(f"{machine['model']} ({machine['level']}), {os.cpu_count()} CPUs")
    by_threads = {}
    for threads in (int(t) for t in args.threads.split(",")):
        by_threads[threads] = measure(args, bundles, recipes, threads)
    minutes = (time.perf_counter() - started) / 60
    print(f"\n{machine['model']} ({machine['level']}), {os.cpu_count()} CPUs; whole run {minutes:.1f} min")
    results = {"shape": args.shape, "cpu": machine, "threads": by_threads}
    (args.work / f"speed-{args.shape}.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
