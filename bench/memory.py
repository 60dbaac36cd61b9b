"""Peak memory against recording length: does transcribing a long file stay flat?

    python -m bench.memory                          # tiny random bundle; 10, 20, 40, 60 minutes; 3 repeats
    python -m bench.memory --bundle DIR --minutes 10,60 --repeats 5

Each length is a WAV file of noise in 30 s blocks, each block with a half-second pause where the
cutter can cut. Every measurement is a fresh process (``python -m bench.memory --child BUNDLE
WAV``) that loads the bundle, transcribes the file from disk (2 new tokens per chunk: the decoding
is not what is measured) and reports its high-water mark (VmHWM, Linux). The table gives the
median over repeats, the spread, and the ratio to the shortest recording: a runtime that streams
the file stays near 1.0, one that holds the file or per-chunk audio grows with length.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import subprocess
import sys
from pathlib import Path

from bench.utils import ROOT, table

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


def peak_rss_kb() -> int:
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("VmHWM")).split()[1])


def child(bundle: str, wav: str) -> None:
    """Run in a fresh process: transcribe ``wav`` and print its peak RSS as JSON."""
    from qwen_asr_edge.runtime import Transcriber, TranscriptionOptions

    options = TranscriptionOptions(max_new_tokens=2)
    result = Transcriber(bundle, providers="cpu").transcribe(wav, options=options)
    print(json.dumps({"peak_rss_kb": peak_rss_kb(), "duration": result.duration}))


def measure(bundle: Path, wav: Path, timeout: int = 1800) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "bench.memory", "--child", str(bundle), str(wav)],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(
            line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")
        )
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown CPU"


def run(bundle: Path, minutes: list[float], repeats: int, work: Path) -> list[dict]:
    rows = []
    for m in minutes:
        wav = work / f"noise-{m:g}min.wav"
        if not wav.exists():
            write_noise(wav, m)
        runs = [measure(bundle, wav) for _ in range(repeats)]
        peaks = [r["peak_rss_kb"] / 1e3 for r in runs]  # MB
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
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child(*argv[1:3])
        return 0
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
