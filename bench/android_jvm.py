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
drop), and whether the tokens equal the Python runtime's. A second table streams 60 s of LibriVox
speech in 2 s blocks through each runtime's bounded streaming mode (12 tokens a step, as
bench/streaming.py) and shows the median update time early and after an utterance cycle.
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

import numpy as np

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


PYTHON_STREAM = """
import json, sys
import numpy as np
from qwen_asr_edge.runtime import Transcriber
from qwen_asr_edge.runtime.streaming import StreamingOptions
bundle, pcm, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
wav = np.fromfile(pcm, dtype="<f4")
asr = Transcriber(bundle, providers="cpu", threads=threads, verify=False)
session = asr.stream(options=StreamingOptions(max_new_tokens=12))
updates = []
for start in range(0, wav.size, 32000):
    for u in session.feed(wav[start : start + 32000]):
        updates.append({"end": u.end, "compute_s": u.compute_seconds})
session.finish()
print(json.dumps({"updates": updates}))
"""
SPEECH = CLIP.parent
STREAM_SECONDS = 60


def stream_clip() -> Path:
    """60 s of Debian's LibriVox clips, one after another, as float32 PCM."""
    import soundfile as sf

    clips = [sf.read(p, dtype="float32")[0] for p in sorted(SPEECH.glob("*.wav"))]
    audio = np.concatenate(clips * (STREAM_SECONDS // 24 + 1))[: STREAM_SECONDS * 16000]
    path = BUILD / "bench-stream.pcm"
    audio.astype("<f4").tofile(path)
    return path


def step_medians(result: dict) -> tuple[float, float]:
    """Median update seconds in the first 10 s and in (30, 60] s of the stream."""
    early = [u["compute_s"] for u in result["updates"] if u["end"] <= 10]
    late = [u["compute_s"] for u in result["updates"] if 30 < u["end"] <= 60]
    return statistics.median(early), statistics.median(late)


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


def jvm_command(*args: object) -> list[str]:
    """``java ... BenchMain ARGS`` with the library and the JNI layer that test-kotlin.sh built."""
    lines = (ROOT / ".cache/android/toolchain.env").read_text().split()  # KEY=VALUE lines
    env = {k: v.strip("'\"") for k, v in (line.split("=", 1) for line in lines if "=" in line)}
    jar = BUILD / "kotlin-tests.jar"
    if not jar.is_file():
        raise SystemExit("build the JVM side first: scripts/test-kotlin.sh")
    return [
        f"{env['JAVA_HOME']}/bin/java",
        f"-Dqwenasr.jni.library={BUILD / 'libqwen_asr_ort_jni.so'}",
        "-cp",
        f"{jar}:{env['KOTLIN_HOME']}/lib/kotlin-stdlib.jar",
        "io.github.qwenasredge.BenchMain",
        *(str(a) for a in args),
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
        result = run(jvm_command(mobile, pcm, repeats, args.threads, *(["copy"] if copy else [])))
        rows.append(summary("Kotlin (JVM)", graphs, result, python))
    stream = stream_clip()
    streams = {
        "Python runtime": step_medians(
            run([sys.executable, "-c", PYTHON_STREAM, str(args.bundle), str(stream), str(args.threads)])
        ),
        "Kotlin (JVM), .ort mapped": step_medians(
            run(jvm_command("stream", mobile_ort, stream, args.threads))
        ),
    }
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
        "stream_step_medians_s": {k: {"first_10s": a, "30_60s": b} for k, (a, b) in streams.items()},
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
        f"streaming, bounded mode: {STREAM_SECONDS} s of LibriVox speech in 2 s blocks, 12 tokens a step; "
        "median seconds per update",
        table(
            ["runtime", "first 10 s", "30-60 s", "vs Python (30-60 s)"],
            [
                [name, f"{a:.3f}", f"{b:.3f}", f"{b / streams['Python runtime'][1]:.2f}x"]
                for name, (a, b) in streams.items()
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
