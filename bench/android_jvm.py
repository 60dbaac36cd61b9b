"""The Kotlin library on the JVM against the Python runtime, on one bundle and clip, in the same run.

    python -m bench.android_jvm [--bundle .cache/bench/0.6B-vocab/int4] [--repeats 5] [--threads 2]

The bundle (full-size random weights cost what real ones do; bench/bundles.py makes them) is
packed with ``android-pack`` twice, once with ORT-format graphs (what an app ships) and once with
the .onnx graphs, each kept beside it as BUNDLE-mobile-ort / BUNDLE-mobile-onnx. Then each runtime
runs in a fresh process: the Python runtime (``Transcriber`` on the bundle's .onnx graphs) and the
JVM (``BenchMain``: ``QwenAsr`` through the JNI layer, on each mobile bundle; the .ort graphs
memory-mapped and used in place, QwenAsr's default, and read into memory), all with the same
onnxruntime library and threads, on a LibriVox clip (Debian's pocketsphinx-testdata). The table
shows the medians over ``--repeats`` transcriptions after one warm-up, the model's load time, the
process's peak resident memory (VmHWM) and, at the end, its anonymous and file-backed
resident memory (RssAnon / RssFile: mapped graph pages are file-backed, which the system can
drop), and whether the tokens equal the Python runtime's.
The JVM side needs ``scripts/test-kotlin.sh`` to have built it. Results: bench/results/android-jvm.{json,log}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.utils import ROOT, cpu_model, dir_size, table

RESULTS = Path(__file__).resolve().parent / "results"
CLIP = Path("/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav")
BUILD = ROOT / "build" / "android_bridge"

PYTHON_CHILD = """
import json, sys, time
import numpy as np
from qwen_asr_edge.runtime import Transcriber
bundle, pcm, repeats, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
wav = np.fromfile(pcm, dtype="<f4")
start = time.perf_counter()
asr = Transcriber(bundle, providers="cpu", threads=threads, verify=False)
load = time.perf_counter() - start
runs, tokens = [], []
for _ in range(repeats):
    start = time.perf_counter()
    segment = asr.transcribe(wav).segments[0]
    runs.append({"wall_s": time.perf_counter() - start})
    tokens = segment.tokens
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the parent (this bench, which
# packed the bundle and so ran it), VmHWM is this process's own.
status = {line.split(":")[0]: line.split()[1] for line in open("/proc/self/status") if "kB" in line}
print(json.dumps({"load_s": load, "runs": runs, "tokens": list(tokens), "vm_hwm_kb": int(status["VmHWM"]),
                  "rss_anon_kb": int(status["RssAnon"]), "rss_file_kb": int(status["RssFile"])}))
"""


def pack(bundle: Path, graph_format: str) -> tuple[Path, float]:
    """The mobile bundle beside ``bundle`` (packed once); (its path, seconds packing took, 0 if kept)."""
    from qwen_asr_edge.android_bridge.pack import pack_bundle

    out = bundle.parent / f"{bundle.name}-mobile-{graph_format}"
    if (out / "manifest.json").is_file():
        return out, 0.0
    start = time.perf_counter()
    pack_bundle(bundle, out, graph_format=graph_format)
    return out, time.perf_counter() - start


def run(command: list[str]) -> dict:
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def jvm_command(bundle: Path, pcm: Path, repeats: int, threads: int, copy: bool = False) -> list[str]:
    env = dict(
        line.split("=", 1)
        for line in (ROOT / ".cache/android/toolchain.env").read_text().split()
        if "=" in line
    )
    env = {k: v.strip("'\"") for k, v in env.items()}
    jar = BUILD / "kotlin-tests.jar"
    if not jar.is_file():
        raise SystemExit("build the JVM side first: scripts/test-kotlin.sh")
    classpath = f"{jar}:{env['KOTLIN_HOME']}/lib/kotlin-stdlib.jar"
    return [
        f"{env['JAVA_HOME']}/bin/java",
        f"-Dqwenasr.jni.library={BUILD / 'libqwen_asr_ort_jni.so'}",
        "-cp",
        classpath,
        "io.github.qwenasredge.BenchMain",
        str(bundle),
        str(pcm),
        str(repeats),
        str(threads),
        *(["copy"] if copy else []),
    ]


def summary(name: str, graphs: str, result: dict, reference: dict | None) -> dict:
    runs = result["runs"][1:] or result["runs"]  # the first is the warm-up
    out = {
        "runtime": name,
        "graphs": graphs,
        "load_s": result["load_s"],
        "wall_s": statistics.median(r["wall_s"] for r in runs),
        "peak_rss_mb": result["vm_hwm_kb"] / 1024,
        "end_anon_mb": result["rss_anon_kb"] / 1024,
        "end_file_mb": result["rss_file_kb"] / 1024,
        "tokens": len(result["tokens"]),
        "same_tokens": reference is None or result["tokens"] == reference["tokens"],
    }
    if "steps" in runs[0]:
        out["encode_s"] = statistics.median(r["encode_s"] for r in runs)
        out["prefill_s"] = statistics.median(r["prefill_s"] for r in runs)
        out["step_ms"] = statistics.median(1000 * r["steps_s"] / max(r["steps"], 1) for r in runs)
    return out


def _num(row: dict, key: str, digits: int) -> str:
    return f"{row[key]:.{digits}f}" if key in row else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", type=Path, default=ROOT / ".cache/bench/0.6B-vocab/int4")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--name", default="android-jvm")
    args = parser.parse_args(argv)
    import soundfile as sf

    wav, rate = sf.read(CLIP, dtype="float32")
    assert rate == 16000
    pcm = BUILD / "bench-clip.pcm"
    BUILD.mkdir(parents=True, exist_ok=True)
    wav.astype("<f4").tofile(pcm)
    mobile_ort, pack_ort = pack(args.bundle, "ort")
    mobile_onnx, _ = pack(args.bundle, "onnx")
    repeats = args.repeats + 1
    python = run(
        [sys.executable, "-c", PYTHON_CHILD, str(args.bundle), str(pcm), str(repeats), str(args.threads)]
    )
    rows = [summary("Python runtime", ".onnx", python, None)]
    for graphs, mobile, copy in (
        (".ort mapped", mobile_ort, False),
        (".ort read", mobile_ort, True),
        (".onnx", mobile_onnx, False),
    ):
        result = run(jvm_command(mobile, pcm, repeats, args.threads, copy))
        rows.append(summary("Kotlin (JVM)", graphs, result, python))
    base = rows[0]["wall_s"]
    sizes = {f.name: f.stat().st_size for f in sorted(mobile_ort.rglob("*")) if f.is_file()}
    report = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "bundle": str(args.bundle.relative_to(ROOT) if args.bundle.is_relative_to(ROOT) else args.bundle),
        "clip_seconds": len(wav) / rate,
        "threads": args.threads,
        "repeats": args.repeats,
        "rows": rows,
        "bundle_bytes": dir_size(args.bundle),
        "mobile_ort_bytes": dir_size(mobile_ort),
        "mobile_ort_files": sizes,
        "pack_seconds": pack_ort,
    }
    lines = [
        f"{report['bundle']}, a {report['clip_seconds']:.1f} s clip, {args.threads} threads, "
        f"median of {args.repeats} after a warm-up; {report['cpu']}, {report['cores']} cores",
        table(
            [
                "runtime",
                "graphs",
                "load s",
                "wall s",
                "vs Python",
                "encode s",
                "prefill s",
                "ms/step",
                "peak RSS MB",
                "end anon/file MB",
                "tokens",
                "same tokens",
            ],
            [
                [
                    r["runtime"],
                    r["graphs"],
                    f"{r['load_s']:.2f}",
                    f"{r['wall_s']:.2f}",
                    f"{r['wall_s'] / base:.2f}x",
                    _num(r, "encode_s", 3),
                    _num(r, "prefill_s", 3),
                    _num(r, "step_ms", 1),
                    f"{r['peak_rss_mb']:.0f}",
                    f"{r['end_anon_mb']:.0f} / {r['end_file_mb']:.0f}",
                    r["tokens"],
                    "yes" if r["same_tokens"] else "NO",
                ]
                for r in rows
            ],
        ),
        "",
        f"bundle {report['bundle_bytes'] / 1e6:.0f} MB; "
        f"mobile bundle (.ort) {report['mobile_ort_bytes'] / 1e6:.0f} MB"
        + (f", packed in {pack_ort:.0f} s" if pack_ort else ""),
        table(["file", "MB"], [[name, f"{size / 1e6:.1f}"] for name, size in sizes.items() if size > 1e5]),
    ]
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"{args.name}.log").write_text(text + "\n")
    return 0 if all(r["same_tokens"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
