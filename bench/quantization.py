"""Bundle size, load time, peak RSS and decode speed per quantization recipe, full-size shapes.

    python -m bench.quantization [--shape 0.6B|1.7B] [--sizes-only] [--work DIR]

Generates a random-weight checkpoint of the real shape (random weights cost the same to run),
exports it, quantizes it with each recipe, and measures every bundle in a fresh process on an
11 s clip: load time (sessions created, hashes checked), end-to-end time for 1 and for 41 new
tokens, the median decode call, and peak RSS (VmHWM). Medians over --repeats. Bundles already
built under --work are reused (their quantize time then shows as "-").
The int4 rows at block sizes 32/64/128 are how the default block size was chosen.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.bundles import build
from bench.utils import dir_size, run_child, table

MEASURE = """
import json, statistics, time, numpy as np
t = time.perf_counter()
from qwen_asr_edge.runtime import Transcriber, TranscriptionOptions
tr = Transcriber({bundle!r}, providers="cpu", threads={threads})
load = time.perf_counter() - t
wav = (np.random.default_rng(0).standard_normal(11 * 16000) * 0.1).astype(np.float32)
steps = []
generate = tr.greedy.generate
def timed(*a, **k):
    g = generate(*a, **k)
    steps.extend(g.step_seconds)
    return g
tr.greedy.generate = timed
def run(n):
    t = time.perf_counter()
    tr.transcribe(wav, options=TranscriptionOptions(max_new_tokens=n))
    return time.perf_counter() - t
run(2)  # warm-up
steps.clear()
one = statistics.median(run(1) for _ in range({repeats}))
many = statistics.median(run(41) for _ in range({repeats}))
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent through fork and exec.
rss = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1e6
print(json.dumps({{"load_s": load, "first_token_s": one, "e2e_41_s": many,
                  "ms_per_token": statistics.median(steps) * 1000, "peak_rss_gb": rss}}))
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", default="0.6B", choices=["0.6B", "1.7B", "tiny"])
    p.add_argument("--work", type=Path, default=Path(".cache/bench"))
    p.add_argument("--recipes", default="fp32,int8,int4,int4-b32,int4-b128,fp16")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--sizes-only", action="store_true", help="build the bundles and print their sizes only")
    args = p.parse_args(argv)

    recipes = args.recipes.split(",")
    bundles = build(args.work, args.shape, recipes)
    if args.sizes_only:
        rows = [[name, f"{dir_size(b.path) / 1e6:.0f}"] for name, b in bundles.items()]
        print(f"\n{args.shape} shape: bundle sizes")
        print(table(["recipe", "bundle MB"], rows))
        return 0
    rows = []
    for name, b in bundles.items():
        path, report, quant_s = b.path, b.report, b.build_seconds
        m = run_child(MEASURE.format(bundle=str(path), threads=args.threads, repeats=args.repeats))
        dec = report["decoder"] if report else None
        rows.append(
            [
                name,
                f"{dir_size(path) / 1e6:.0f}",
                f"{quant_s:.0f}" if report and quant_s is not None else "-",
                f"{m['load_s']:.1f}",
                f"{m['peak_rss_gb']:.2f}",
                f"{m['first_token_s']:.2f}",
                f"{m['ms_per_token']:.1f}",
                f"{m['e2e_41_s']:.2f}",
                f"{dec['logits_cosine_mean']:.3f}" if dec else "-",
                f"{dec['top1_agreement']:.0%}" if dec else "-",
            ]
        )
    headers = [
        "recipe",
        "bundle MB",
        "quantize s",
        "load s",
        "peak RSS GB",
        "first token s",
        "decode ms/token",
        "11 s clip, 41 tokens: s",
        "logit cos",
        "top-1",
    ]
    print(f"\n{args.shape} shape, random weights, {args.threads} threads, medians of {args.repeats}")
    print(table(headers, rows))
    results = {"shape": args.shape, "rows": rows, "headers": headers}

    (args.work / f"quantization-{args.shape}.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
