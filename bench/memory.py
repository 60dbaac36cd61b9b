"""Peak memory against recording length: does transcribing a long file stay flat?

    python -m bench.memory                          # tiny random bundle; 10, 20, 40, 60 minutes; 3 repeats
    python -m bench.memory --bundle DIR --minutes 10,60 --repeats 5

Each length is a WAV file of noise in 30 s blocks, each block with a half-second pause where the
cutter can cut. Every measurement is a fresh process (``python -m bench.measure.memory BUNDLE
WAV``) that loads the bundle, transcribes the file from disk (2 new tokens per chunk: the decoding
is not what is measured) and reports its high-water mark (VmHWM, Linux). The table gives the
median over repeats, the spread, and the ratio to the shortest recording: a runtime that streams
the file stays near 1.0, one that holds the file or per-chunk audio grows with length.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
from pathlib import Path

from bench.utils import cpu_model, run_child, table

SR = 16000
BLOCK_SECONDS = 30


def write_noise(path: Path, minutes: float, seed: int = 0) -> Path:
    """Write ``minutes`` of 16 kHz noise one block at a time (the writer's memory stays small)."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(seed)
    with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16") as f:
        for _ in range(round(minutes * 60 / BLOCK_SECONDS)):
            block = (rng.standard_normal(BLOCK_SECONDS * SR) * 0.1).astype(np.float32)
            block[rng.integers(0, (BLOCK_SECONDS - 1) * SR) :][: SR // 2] = 0  # a quiet point to cut at
            f.write(block)
    return path


def run(bundle: Path, minutes: list[float], repeats: int, work: Path) -> list[dict]:
    rows = []
    for m in minutes:
        wav = work / f"noise-{m:g}min.wav"
        if not wav.exists():
            write_noise(wav, m)
        runs = [run_child("bench.measure.memory", bundle, wav) for _ in range(repeats)]
        peaks = [r["peak_rss_gb"] * 1e3 for r in runs]  # MB
        rows.append(
            {
                "minutes": m,
                "seconds": runs[0]["duration"],
                "peaks_mb": peaks,
                "median_mb": statistics.median(peaks),
            }
        )
    return rows


def render(rows: list[dict], bundle: Path, repeats: int) -> str:
    base = rows[0]["median_mb"]
    body = [
        [f"{r['minutes']:g}", f"{r['median_mb']:.0f}", f"{min(r['peaks_mb']):.0f}–{max(r['peaks_mb']):.0f}",
         f"{r['median_mb'] / base:.2f}"]
        for r in rows
    ]  # fmt: skip
    head = f"## peak RSS transcribing from a file, {bundle.name}, medians of {repeats}, {cpu_model()}"
    return (
        head + "\n\n" + table(["minutes", "peak RSS MB", "range MB", f"/ {rows[0]['minutes']:g} min"], body)
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", type=Path, help="bundle to load (default: the tiny random-weight bundle)")
    p.add_argument("--minutes", default="10,20,40,60", help="recording lengths, shortest first")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--work", type=Path, default=Path(".cache/bench"))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    minutes = sorted(float(m) for m in args.minutes.split(","))
    work = (args.work / "memory").resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.bundle is None:
        from bench.bundles import build

        bundle = build(args.work, "tiny", [])["fp32"].path
    else:
        bundle = args.bundle
    rows = run(bundle.resolve(), minutes, args.repeats, work)
    print(render(rows, bundle, args.repeats))
    (work / "memory.json").write_text(json.dumps({"bundle": str(bundle), "cpu": cpu_model(), "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
