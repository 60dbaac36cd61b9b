"""Where a bundle's time goes, by onnxruntime operator: its profiler on the encoder (an 11 s clip),
the prefill of that clip's prompt, and decode steps at a given context.

    python -m bench.profile_ops BUNDLE [--threads 2] [--context 50,500] [--steps 24]

Prints one table per phase: milliseconds per run of each operator type (summed over its nodes,
median over the runs), its share, and the node count. Operator times are what onnxruntime's
profiler records for each kernel; the phase's total also holds the session's own overhead, which
is why the kernel rows do not add up to it (the gap is printed as "outside kernels").
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench.measure.common import clip, median, text_prompt
from qwen_asr_edge.runtime import Transcriber, TranscriptionOptions
from qwen_asr_edge.runtime.providers import SessionSettings

_CONTROL_FLOW = {"Scan", "Loop", "If"}


def _runs(events: list[dict]) -> tuple[list[list[dict]], list[float]]:
    """The profile's kernel events grouped by model run (``model_run`` events bound them)."""
    runs = [e for e in events if e.get("cat") == "Session" and e["name"] == "model_run"]
    kernels = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    grouped: list[list[dict]] = []
    for run in runs:
        lo, hi = run["ts"], run["ts"] + run["dur"]
        grouped.append([k for k in kernels if lo <= k["ts"] <= hi])
    return grouped, [r["dur"] / 1000 for r in runs]


def table(title: str, runs: list[list[dict]], totals: list[float]) -> None:
    per_op: dict[str, list[float]] = defaultdict(list)
    nodes: dict[str, set[str]] = defaultdict(set)
    for kernels in runs:
        ms: dict[str, float] = defaultdict(float)
        for k in kernels:
            op = k["args"].get("op_name", "?")
            ms[op] += k["dur"] / 1000
            nodes[op].add(k["name"])
        for op in nodes:
            per_op[op].append(ms.get(op, 0.0))
    total = median(totals)
    rows = sorted(((median(v), op) for op, v in per_op.items()), reverse=True)
    # a control-flow node's time holds its body's kernels, which have rows of their own
    in_kernels = sum(ms for ms, op in rows if op not in _CONTROL_FLOW)
    print(f"\n{title}: {total:.2f} ms per run (median of {len(totals)})")
    print("| operator | ms | share | nodes |")
    print("|---|---|---|---|")
    for ms, op in rows:
        if ms >= 0.005 * total:
            name = f"{op} (its body's operators included in the rows)" if op in _CONTROL_FLOW else op
            print(f"| {name} | {ms:.2f} | {100 * ms / total:.1f}% | {len(nodes[op])} |")
    smaller = sum(ms for ms, op in rows if ms < 0.005 * total and op not in _CONTROL_FLOW)
    print(f"| (smaller operators) | {smaller:.2f} | | |")
    print(f"| outside kernels | {total - in_kernels:.2f} | {100 * (total - in_kernels) / total:.1f}% | |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--context", default="50,500", help="comma-separated contexts for decode steps")
    p.add_argument("--steps", type=int, default=24)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        settings = SessionSettings(threads=args.threads, profile=str(Path(tmp) / "ort"))
        tr = Transcriber(args.bundle, providers="cpu", settings=settings)
        wav = clip(11, rng)
        options = TranscriptionOptions(max_new_tokens=1, ignore_stop=True)
        for _ in range(args.repeats + 1):  # the first is a warm-up, dropped below
            tr.transcribe(wav, options=options)
        contexts = [int(c) for c in args.context.split(",")]
        for context in contexts:
            prompt = text_prompt(tr, context, rng)
            tr.decode([prompt], None, [args.steps + 1], stop=False)
        traces = tr.end_profiling()
        enc_events = json.loads(Path(traces["encoder"]).read_text())
        dec_events = json.loads(Path(traces["decoder"]).read_text())
    enc_runs, enc_totals = _runs(enc_events)
    table("encoder, 11 s clip", enc_runs[1:], enc_totals[1:])
    dec_runs, dec_totals = _runs(dec_events)
    # the decoder's runs in order: each clip's prefill (max_new_tokens=1: no step), then for each
    # context its prompt's prefill and args.steps steps
    n = args.repeats + 1
    expected = n + len(contexts) * (1 + args.steps)
    if len(dec_runs) != expected:
        raise SystemExit(f"the decoder ran {len(dec_runs)} times, not {expected}: phases unclear")
    table("prefill, 11 s clip", dec_runs[1:n], dec_totals[1:n])
    at = n
    for context in contexts:
        steps = slice(at + 2, at + 1 + args.steps)  # the prompt's prefill and the first step left out
        table(f"decode step, context {context}", dec_runs[steps], dec_totals[steps])
        at += 1 + args.steps
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
