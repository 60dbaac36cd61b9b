"""Bundle size, load time, peak RSS and decode speed per quantization recipe, full-size shapes.

    python -m bench.quantization [--shape 0.6B|1.7B] [--realistic] [--sizes-only] [--work DIR]

Generates a random-weight checkpoint of the real shape (random weights cost the same to run),
exports it, quantizes it with each recipe, and measures every bundle in a fresh process
(bench/measure/recipe.py) on an 11 s clip: load time (sessions created, hashes checked),
end-to-end time for 1 and for 41 new tokens, the median decode call, and peak RSS (VmHWM).
Medians over --repeats. Bundles already built under --work are reused (their quantize time then
shows as "-").
The int4 rows at block sizes 32/64/128 are how the default block size was chosen; with
--realistic the checkpoint carries trained models' activation statistics (export.synthetic);
this table's speeds and bench.layer_errors' per-layer errors chose the INT8 block size (its
end-to-end quality figures on random full-size weights are a worst case). Recipe variants: see
bench.bundles.variant ("int8-b32", "int4-b32", "int4-head8").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.bundles import build, folder
from bench.utils import cpu, dir_size, run_child, table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", default="0.6B", choices=["0.6B", "1.7B", "tiny"])
    p.add_argument("--work", type=Path, default=Path(".cache/bench"))
    p.add_argument("--recipes", default="fp32,int8,int8-b32,int4,int4-b32,int4-b128,fp16")
    p.add_argument("--realistic", action="store_true", help="plant trained models' activation statistics")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--sizes-only", action="store_true", help="build the bundles and print their sizes only")
    args = p.parse_args(argv)

    recipes = args.recipes.split(",")
    bundles = build(args.work, args.shape, recipes, args.realistic)
    if args.sizes_only:
        rows = [[name, f"{dir_size(b.path) / 1e6:.0f}"] for name, b in bundles.items()]
        print(f"\n{args.shape} shape: bundle sizes")
        print(table(["recipe", "bundle MB"], rows))
        return 0
    rows = []
    for name, b in bundles.items():
        path, report, quant_s = b.path, b.report, b.build_seconds
        m = run_child("bench.measure.recipe", path, "--threads", args.threads, "--repeats", args.repeats)
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
    machine = cpu()
    weights = "realistic random weights" if args.realistic else "random weights"
    print(f"\n{args.shape} shape, {weights}, {args.threads} threads, medians of {args.repeats}, "
          f"{machine['model']} ({machine['level']})")  # fmt: skip
    print(table(headers, rows))
    results = {
        "shape": args.shape,
        "realistic": args.realistic,
        "cpu": machine,
        "rows": rows,
        "headers": headers,
    }
    (args.work / f"quantization-{folder(args.shape, args.realistic)}.json").write_text(
        json.dumps(results, indent=2)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
