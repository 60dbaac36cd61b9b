"""Compare two runs of ``bench/cpu_probe.py`` (the reference machine and another CPU), bundle by
bundle: greedy tokens, and teacher-forced top tokens at every step and at the clear ones.

    python -m bench.cpu_compare REFERENCE.jsonl OTHER.jsonl [--out RESULT.json]

A "clear" step is one whose top two logits are more than ``CLEAR`` apart on the reference
machine (quantization errs by about 0.1 on the unit-gain tiny weights): there two correct
machines must pick the same token. Each probe file holds one or more runs (JSON lines).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

CLEAR = 0.3


def load(path: Path) -> tuple[dict, list[dict]]:
    runs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return runs[0]["machine"], [r for run in runs for r in run["results"]]


def compare(reference: list[dict], other: list[dict]) -> list[dict]:
    rows = []
    for a, b in zip(reference, other, strict=True):
        clear = [i for i, m in enumerate(a["margin"]) if m > CLEAR]
        rows.append(
            {
                "bundle": a["name"],
                "greedy_tokens_equal": a["tokens"] == b["tokens"],
                "top1_equal": sum(x == y for x, y in zip(a["top"], b["top"], strict=True)),
                "steps": len(a["top"]),
                "clear_steps": len(clear),
                "clear_equal": sum(a["top"][i] == b["top"][i] for i in clear),
                "max_margin_change": max(
                    (abs(x - y) for x, y in zip(a["margin"], b["margin"], strict=True)), default=0.0
                ),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reference", type=Path)
    p.add_argument("other", type=Path)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    (ref_machine, ref), (other_machine, other) = load(args.reference), load(args.other)
    rows = compare(ref, other)
    print(f"reference: {ref_machine}\nother:     {other_machine}")
    headers = ["bundle", "greedy tokens", "top-1, all steps", "clear steps agreeing", "max margin change"]
    print(" | ".join(headers))
    for r in rows:
        cells = [
            r["bundle"],
            "equal" if r["greedy_tokens_equal"] else "DIFFER",
            f"{r['top1_equal']}/{r['steps']}",
            f"{r['clear_equal']}/{r['clear_steps']}",
            f"{r['max_margin_change']:.3g}",
        ]
        print(" | ".join(cells))
    if args.out:
        args.out.write_text(
            json.dumps({"reference": ref_machine, "other": other_machine, "rows": rows}, indent=2)
        )
    return 0 if all(r["clear_equal"] == r["clear_steps"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
