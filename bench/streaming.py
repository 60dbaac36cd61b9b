"""Live streaming: per-update latency, real-time factor and memory on the full-size shape, and
what streaming costs in accuracy on the demo model.

    python -m bench.streaming [--recipes int4,int8] [--threads 2] [--seconds 600]
                              [--parts latency,hour,accuracy]     (default: latency,accuracy)

Latency (bench/measure/stream.py, one fresh process per bundle and mode): a random-weight 0.6B
checkpoint with the real Qwen3 vocabulary (streaming re-tokenizes its own output, so filler tokens
would inflate the prefix), exported with the default windowed encoder and GroupQueryAttention
decoder, quantized; real speech fed in 2 s blocks as fast as the steps run; each step generates 12
tokens. Per mode, the median and 95th percentile of the update times in three windows: the first
10 s, (30, 60] s and the stream's last 30 s ((570, 600] s at the default ``--seconds 600``), one
utterance cycle (30 s) each past the first. The reference mode is run to 60 s; at the end its one
step is measured on a session seeded with all but 2 s of the audio and a transcript of that
length (running there would take hours). Real-time
factor: all update time over the audio streamed. Peak RSS: the process's high-water mark.

``--parts hour``: the bounded int4 stream for 60 minutes, RSS every minute (peak at 60 min within 10 %
of 10 min is the goal).

Accuracy (the demo model, its held-out clips with speech): each clip streamed in 0.25 s blocks, final text
against offline transcription of the same clip (exact-equality rate, WER of each against the
reference); then each clip followed by 4 s of silence, and how long after its speech ends its
final text is committed (stream seconds, which at live pace is wall time). The demo model knows
single short sentences only (it gives no transcript for clips strung into 20 s), so longer
streams are judged on the 0.6B shape's cost alone.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
from pathlib import Path

import numpy as np

from bench.bundles import build
from bench.utils import cpu, run_child, table

RESULTS = Path(__file__).resolve().parent / "results"
VOCAB = Path(__file__).resolve().parent.parent / ".cache" / "qwen3-vocab"


def windows(seconds: float) -> dict[str, tuple[float, float]]:
    """The spans whose updates are summarized: 10 s, 60 s, and the stream's last 30 s ("end")."""
    return {"10 s": (0.0, 10.0), "60 s": (30.0, 60.0), "end": (seconds - 30.0, seconds)}


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def window_stats(updates: list[list[float]], lo: float, hi: float) -> tuple[float, float] | None:
    times = [t for end, t in updates if lo < end <= hi]
    return (statistics.median(times), percentile(times, 95)) if times else None


def latency(bundles: dict[str, Path], threads: int, seconds: float) -> list[dict]:
    rows = []
    for recipe, path in bundles.items():
        for mode in ("bounded", "reference"):
            run_seconds = seconds if mode == "bounded" else min(60.0, seconds)
            logging.info("%s %s: streaming %g s", recipe, mode, run_seconds)
            child = run_child(
                "bench.measure.stream", path, "--mode", mode, "--seconds", run_seconds,
                "--threads", threads, timeout=7200,
            )  # fmt: skip
            row = {"recipe": recipe, "mode": mode, "run": child}
            for name, (lo, hi) in windows(seconds).items():
                row[name] = window_stats(child["updates"], lo, hi)
            if mode == "reference" and seconds > run_seconds:
                logging.info("%s reference: one step at %g s", recipe, seconds)
                step = run_child(
                    "bench.measure.stream", path, "--mode", mode, "--step-at", seconds, "--threads", threads,
                    timeout=7200,
                )  # fmt: skip
                row["end"] = (step["step_s"], step["step_s"])
                row["seeded"] = step
            audio = child["updates"][-1][0] if child["updates"] else 0.0
            row["rtf"] = sum(t for _, t in child["updates"]) / audio if audio else float("nan")
            row["peak_rss_gb"] = child["peak_rss_gb"]
            rows.append(row)
    return rows


def render_latency(rows: list[dict], seconds: float) -> str:
    def cell(stat):
        return "-" if stat is None else f"{stat[0]:.2f} / {stat[1]:.2f}"

    out = []
    for row in rows:
        base = row["10 s"][0] if row["10 s"] else float("nan")
        last = row["end"][0] if row["end"] else float("nan")
        seeded = " (one step, seeded)" if "seeded" in row else ""
        out.append(
            [
                row["recipe"],
                row["mode"],
                cell(row["10 s"]),
                cell(row["60 s"]),
                cell(row["end"]) + seeded,
                f"{last / base:.2f}",
                f"{row['rtf']:.2f}",
                f"{row['peak_rss_gb']:.2f}",
            ]
        )
    headers = [
        "bundle", "mode", "update s at 10 s (median / p95)", "at 60 s", f"at {seconds:g} s",
        f"{seconds:g} s / 10 s", "real-time factor", "peak RSS GB",
    ]  # fmt: skip
    return table(headers, out)


def hour(bundle: Path, threads: int) -> dict:
    logging.info("int4 bounded: streaming 60 minutes")
    child = run_child(
        "bench.measure.stream", bundle, "--seconds", 3600, "--threads", threads, "--rss-every", 60,
        timeout=4 * 3600,
    )  # fmt: skip
    rss = {round(row[0]): row[1] for row in child["rss"]}
    peak = {round(row[0]): row[-1] for row in child["rss"]}
    times = [t for _, t in child["updates"]]
    return {
        "rss": child["rss"],
        "peak_rss_gb": child["peak_rss_gb"],
        "at_10_min": rss.get(600),
        "at_60_min": rss.get(3600),
        "peak_by_10_min": peak.get(600),
        "peak_by_60_min": peak.get(3600),
        "rtf": sum(times) / 3600,
        "p95_s": percentile(times, 95),
    }


def accuracy(work: Path) -> dict:
    """Stream vs offline on the demo model's held-out clips (module docstring)."""
    import jiwer
    import soundfile as sf

    from bench.accuracy import held_out
    from demo import CHECKPOINT
    from qwen_asr_edge.runtime import Transcriber, demo_bundle

    records = [r for r in held_out(CHECKPOINT, work) if r["kind"] != "non-speech"]  # WER needs words
    tr = Transcriber(demo_bundle(), providers="cpu")
    rate = tr.sample_rate
    block = rate // 4
    clips, refs, offline, streamed = [], [], [], []
    for record in records:
        wav, sr = sf.read(record["audio"], dtype="float32")
        assert sr == rate
        clips.append(wav)
        refs.append(record["text"])
        offline.append(tr.transcribe(wav).text)
        session = tr.stream()
        streamed.append(list(session.updates(np.array_split(wav, max(1, len(wav) // block)), rate))[-1].text)
    same = [a == b for a, b in zip(offline, streamed, strict=True)]
    result = {
        "clips": len(records),
        "equal_rate": sum(same) / len(same),
        "wer_offline": jiwer.wer(refs, offline),
        "wer_streamed": jiwer.wer(refs, streamed),
        "wer_streamed_vs_offline": jiwer.wer(offline, streamed),
        "differing": [
            {"offline": a, "streamed": b} for a, b in zip(offline, streamed, strict=True) if a != b
        ][:20],
    }
    # Each clip followed by 4 s of silence, as a speaker pausing: how long after the speech ends
    # until the words are committed (stream seconds; at live pace, wall time), before finish().
    pause = np.zeros(4 * rate, np.float32)
    delays, never = [], 0
    for wav in clips:
        session = tr.stream()
        updates = []
        for piece in np.array_split(np.concatenate([wav, pause]), max(1, (len(wav) + len(pause)) // block)):
            updates += session.feed(piece, rate)
        final = session.finish().committed  # what finish() makes of this stream, pause included
        done = next((u.end for u in updates if final and u.committed == final), None)
        if final and done is None:
            never += 1
        elif final:
            delays.append(done - len(wav) / rate)
    result.update(
        commit_delay_median_s=statistics.median(delays),
        commit_delay_p95_s=percentile(delays, 95),
        committed_in_pause_rate=len(delays) / (len(delays) + never),
    )
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipes", default="int4,int8")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=600.0)
    p.add_argument(
        "--parts", default="latency,accuracy", help="of latency, hour (the 60-minute run), accuracy"
    )
    p.add_argument("--work", type=Path, default=Path(".cache/bench"))
    p.add_argument("--accuracy-work", type=Path, default=Path(".cache/bench-accuracy"))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    machine = cpu()
    out: dict = {"cpu": machine, "threads": args.threads}
    lines = []
    parts = set(args.parts.split(","))
    if parts - {"latency", "hour", "accuracy"}:
        p.error(f"unknown parts: {sorted(parts - {'latency', 'hour', 'accuracy'})}")
    if parts & {"latency", "hour"}:
        recipes = args.recipes.split(",")
        built = build(args.work, "0.6B", recipes, vocab_dir=VOCAB if VOCAB.is_dir() else None)
        bundles = {r: built[r].path for r in recipes}
        title = f"0.6B (random weights, real vocabulary), {args.threads} threads; {machine['model']}"
        lines.append(f"{title} ({machine['level']})")
        if "latency" in parts:
            rows = latency(bundles, args.threads, args.seconds)
            out["latency"] = rows
            lines.append(render_latency(rows, args.seconds))
        if "hour" in parts:
            recipe = "int4" if "int4" in bundles else next(iter(bundles))
            out["hour"] = h = hour(bundles[recipe], args.threads)
            lines.append(
                f"60-minute stream ({recipe}, bounded): RSS {h['at_10_min']:.3f} GB at 10 min, "
                f"{h['at_60_min']:.3f} GB at 60 min ({h['at_60_min'] / h['at_10_min']:.3f}x), peak "
                f"{h['peak_rss_gb']:.3f} GB; real-time factor {h['rtf']:.2f}, update p95 {h['p95_s']:.2f} s"
            )
    name = "streaming-" + "-".join(sorted(parts))
    if "accuracy" in parts:
        out["accuracy"] = acc = accuracy(args.accuracy_work)
        lines.append(
            f"demo model, {acc['clips']} held-out clips streamed: final text = offline on "
            f"{acc['equal_rate']:.1%}; WER {acc['wer_streamed']:.2%} streamed, "
            f"{acc['wer_offline']:.2%} offline, {acc['wer_streamed_vs_offline']:.2%} streamed vs offline. "
            f"Followed by 4 s of silence, {acc['committed_in_pause_rate']:.1%} of the clips had their "
            f"whole text committed in the pause, before finish(), {acc['commit_delay_median_s']:.1f} s "
            f"after the speech ended (median; p95 {acc['commit_delay_p95_s']:.1f} s)"
        )
    text = "\n\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(out, indent=1, default=str) + "\n")
    (RESULTS / f"{name}.log").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
