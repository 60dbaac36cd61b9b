"""Archives on Ray: ``transcribe-many`` with 1 and 2 actors against the plain CLI over the same
folder, in the same run, with the built-in demo model or ``--bundle``.

    python -m bench.batch [--files 200] [--repeats 3] [--cpus 2] [--bundle DIR --name batch-0.6B]

The folder: ``--files`` clips cut (60-100 %) from the demo examples and Debian's real speech.
Each configuration runs ``--repeats`` times, each time a fresh process as a user starts it
(``qwen-asr-edge transcribe -r FOLDER -o DIR``; ``transcribe-many FOLDER -o FILE --num-cpus
CPUS``: a local Ray started and stopped by the command), and the table shows the medians:
wall time of the whole command, as files and seconds of audio per second; for Ray also the job
alone (from starting the actors to the last row), when its first row came (the actors loaded, one
batch done), and the audio per second after that (about: the first batch's share is taken as
its files' share), from the command's own ``note:`` line. Results: bench/results/batch.{json,log}.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.utils import ROOT, cpu_model, table

BATCH = 8  # transcribe-many's default --batch-size: the files of the first row's batch
RESULTS = Path(__file__).resolve().parent / "results"
SPEECH = Path("/usr/share/pocketsphinx/test/data/librivox")
JOB_NOTE = re.compile(r"note: (\d+) files \(([\d.]+) s of audio\) in ([\d.]+) s .* after ([\d.]+) s")


def make_folder(folder: Path, count: int) -> float:
    """``count`` clips in ``folder``; returns their total length in seconds."""
    from qwen_asr_edge.runtime.demo import demo_examples

    sources = [sf.read(e["audio"], dtype="float32") for e in demo_examples()]
    sources += [sf.read(p, dtype="float32") for p in sorted(SPEECH.glob("*.wav"))]
    rng = np.random.default_rng(0)
    total = 0.0
    for i in range(count):
        wav, rate = sources[i % len(sources)]
        wav = wav[: int(len(wav) * rng.uniform(0.6, 1.0))]
        sf.write(folder / f"clip{i:04d}.wav", wav, rate)
        total += len(wav) / rate
    return total


def timed(command: list[str]) -> tuple[float, str]:
    """Run ``command``; (wall seconds, its stderr)."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=1800)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: exit {done.returncode}\n{done.stderr[-3000:]}")
    return took, done.stderr


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--files", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray; the CLI's threads")
    p.add_argument(
        "--bundle",
        type=Path,
        help="a bundle for both (default: the demo model), e.g. .cache/bench/0.6B-vocab/int4: the 0.6B "
        "shape's cost (python -m bench.streaming builds it)",
    )
    p.add_argument("--name", default="batch", help="results go to bench/results/NAME.{json,log}")
    args = p.parse_args(argv)
    model = ["--bundle", str(args.bundle)] if args.bundle else []
    entry = [sys.executable, "-m", "qwen_asr_edge"]
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        folder = work / "archive"
        folder.mkdir()
        audio = make_folder(folder, args.files)
        configs = {
            f"CLI transcribe, {n} thread{'s' if n > 1 else ''}": lambda out, n=n: [
                *entry, "transcribe", "-r", str(folder), "-o", str(out), "--threads", str(n), *model
            ]
            for n in sorted({1, args.cpus})
        }  # fmt: skip
        for actors in (1, 2):
            configs[f"Ray, {actors} actor{'s' if actors > 1 else ''} x 1 thread"] = lambda out, n=actors: [
                *entry, "transcribe-many", str(folder), "-o", str(out / "results.jsonl"),
                "--num-cpus", str(args.cpus), "--actors", str(n), "--threads", "1", *model,
            ]  # fmt: skip
        runs: dict[str, list[dict]] = {name: [] for name in configs}
        for _ in range(args.repeats):  # interleaved: a slow spell of a shared machine hits all alike
            for name, command in configs.items():
                out = work / "out"
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                wall, err = timed(command(out))
                run = {"wall_s": round(wall, 3)}
                note = JOB_NOTE.search(err)
                if note:
                    assert int(note[1]) == args.files, err
                    run["job_s"], run["first_row_s"] = float(note[3]), float(note[4])
                runs[name].append(run)
                print(f"{name}: {run}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows, summary = [], []
    for name, measured in runs.items():
        wall = statistics.median(r["wall_s"] for r in measured)
        cells = [name, f"{wall:.1f}", f"{args.files / wall:.1f}", f"{audio / wall:.0f}", "", "", ""]
        result = {"config": name, "wall_s": wall, "runs": measured}
        if "job_s" in measured[0]:
            job = statistics.median(r["job_s"] for r in measured)
            first = statistics.median(r["first_row_s"] for r in measured)
            # After the first row (the actors loaded, one batch done): the rest of the audio, about.
            rest = (
                audio
                * (args.files - BATCH)
                / args.files
                / statistics.median(r["job_s"] - r["first_row_s"] for r in measured)
            )
            result.update(job_s=job, first_row_s=first, steady_audio_s_per_s=round(rest, 1))
            cells[4:] = [f"{job:.1f}", f"{first:.1f}", f"{rest:.0f}"]
        summary.append(result)
        rows.append(cells)
    headers = ["run", "wall s", "files/s", "audio s/s", "Ray job s", "first row s", "then audio s/s"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    title = (
        f"{args.files} clips ({audio:.0f} s of audio), {args.bundle or 'demo model'}, median of "
        f"{args.repeats} runs; "
        f"{cpu_model()}, {os.cpu_count()} CPUs (load average {load:.1f} at the end)"
    )
    text = f"{title}\n\n{table(headers, rows)}"
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.log").write_text(text + "\n", encoding="utf-8")
    document = {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "bundle": str(args.bundle) if args.bundle else "demo",
        "files": args.files,
        "audio_s": round(audio, 3),
        "load_average": load,
        "results": summary,
    }
    (RESULTS / f"{args.name}.json").write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
