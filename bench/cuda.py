"""The CUDA path, checked and timed on a machine with an NVIDIA GPU and onnxruntime-gpu.

    python -m bench.cuda [--shape 0.6B] [--work DIR] [--out results.json]

1. Tiny random checkpoint, fp32 / fp16 / int4 bundles: which graphs run wholly on CUDA (a session
   with CPU fallback disabled either loads or says which node it cannot place), that the KV
   cache and logits stay on the device, and greedy tokens on CUDA against the CPU provider.
2. Full-size random checkpoint (--shape), the same recipes: time to first token and decode
   ms/token on an 11 s clip with 40 new tokens (stop ids ignored), and batch-8 throughput.

Everything is generated here; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import statistics
import time
import traceback
from pathlib import Path

import numpy as np

RECIPES = ("fp32", "fp16", "int4")


def build(work: Path, shape: str, attention: str = "gqa", recipes=RECIPES) -> dict[str, Path]:
    from qwen_asr_edge.export.build import build_bundle
    from qwen_asr_edge.export.synthetic import write_checkpoint

    ck = work / shape / "checkpoint"
    if not (ck / "config.json").exists():
        write_checkpoint(ck, shape, seed=0)
    fp32 = build_bundle(ck, work / shape / f"fp32-{attention}", decoder_attention=attention, overwrite=True)[
        0
    ]
    out = {"fp32": fp32}
    for name in recipes:  # each quantized from the one fp32 export
        if name != "fp32":
            path = work / shape / f"{name}-{attention}"
            out[name] = build_bundle(fp32, path, recipe=name, overwrite=True)[0]
    return {name: out[name] for name in recipes}


def placement(bundle: Path) -> dict[str, str]:
    """Per graph: "all on CUDA", or onnxruntime's reason for needing the CPU."""
    import onnxruntime as ort

    from qwen_asr_edge.runtime import load_bundle

    b = load_bundle(bundle, verify=False)
    result = {}
    for graph in b.manifest.graphs:
        opts = ort.SessionOptions()
        opts.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
        try:
            ort.InferenceSession(str(b.graph_path(graph)), opts, providers=["CUDAExecutionProvider"])
            result[graph] = "all on CUDA"
        except Exception as e:  # onnxruntime raises its own Fail/InvalidArgument types
            result[graph] = str(e).splitlines()[0][:300]
    return result


def clip(seconds: float, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * 16000)) * 0.1).astype(np.float32)


def tiny_checks(bundles: dict[str, Path]) -> dict:
    from qwen_asr_edge.runtime import Transcriber, TranscriptionOptions

    opts = TranscriptionOptions(max_new_tokens=24, ignore_stop=True)
    clips = [clip(s, i) for i, s in enumerate([1.0, 4.0, 11.0])]
    out = {}
    for name, path in bundles.items():
        cpu = Transcriber(path, providers="cpu").transcribe_batch(clips, options=opts)
        gpu_tr = Transcriber(path, providers="cuda")
        gpu = gpu_tr.transcribe_batch(clips, options=opts)
        same = [a.segments[0].tokens == b.segments[0].tokens for a, b in zip(cpu, gpu, strict=True)]
        # Where the cache and logits live: bind one batch by hand and look at the buffers.
        from qwen_asr_edge.runtime.kv_cache import KvCache

        cache = KvCache(gpu_tr.bundle.manifest.kv_cache, 1, 8, gpu_tr.device)
        out[name] = {
            "provider": gpu_tr.provider,
            "tokens_equal_cpu": same,
            "kv_cache_device": cache.buffers[0].device_name(),
            "placement": placement(path),
        }
    return out


class Timer:
    """One bundle on CUDA: end-to-end runs of the 11 s clip, with the decoder's own timings."""

    def __init__(self, path: Path):
        from qwen_asr_edge.runtime import Transcriber

        self.tr = Transcriber(path, providers="cuda", verify=False)
        self.steps: list[float] = []
        self.prefills: list[float] = []
        self.wav = clip(11)

    def e2e(self, tokens: int, batch: int = 1) -> float:
        from qwen_asr_edge.runtime import TranscriptionOptions

        options = TranscriptionOptions(max_new_tokens=tokens, ignore_stop=True, batch_size=batch)
        t = time.perf_counter()
        results = self.tr.transcribe_batch([self.wav] * batch, options=options)
        seconds = time.perf_counter() - t
        self.steps.extend(results[0].timings.steps)
        self.prefills.extend(results[0].timings.prefill)
        return seconds


def timings(bundles: dict[str, Path], tokens: int, repeats: int) -> dict:
    out = {}
    for name, path in bundles.items():
        row: dict = {"placement": placement(path)}
        try:
            t = Timer(path)
            t.e2e(tokens)  # warm-up: CUDA kernels, cuDNN plans, arena growth
            t.prefills.clear()
            row["first_token_s"] = statistics.median(t.e2e(1) for _ in range(repeats))
            row["prefill_ms"] = statistics.median(t.prefills) * 1000
            t.steps.clear()
            row["e2e_s"] = statistics.median(t.e2e(tokens) for _ in range(repeats))
            row["ms_per_token"] = statistics.median(t.steps) * 1000
            t.e2e(tokens, 8)
            row["batch8_audio_s_per_s"] = (
                8 * 11.0 / statistics.median(t.e2e(tokens, 8) for _ in range(repeats))
            )
        except Exception:
            row["error"] = traceback.format_exc()[-1500:]
        out[name] = row
        print(name, json.dumps(row), flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", default="0.6B", choices=["0.6B", "1.7B", "none"])
    p.add_argument("--work", type=Path, default=Path("/tmp/qwen-asr-edge-cuda"))
    p.add_argument("--out", type=Path, default=Path("cuda.json"))
    p.add_argument("--tokens", type=int, default=40)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--recipes", default=",".join(RECIPES))
    p.add_argument("--decoder-attention", choices=["gqa", "portable"], default="gqa")
    p.add_argument("--skip-tiny", action="store_true", help="timings only")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")

    with contextlib.suppress(ImportError):  # torch's CUDA 13 / cuDNN 9 libraries, for onnxruntime-gpu
        import torch  # noqa: F401
    import onnxruntime as ort

    if hasattr(ort, "preload_dlls"):  # CUDA and cuDNN from the nvidia-* wheels, if present
        ort.preload_dlls()
    results: dict = {"onnxruntime": ort.__version__, "providers": ort.get_available_providers()}
    if "CUDAExecutionProvider" not in results["providers"]:
        print(json.dumps(results))
        raise SystemExit("CUDAExecutionProvider is not available: install onnxruntime-gpu and CUDA 13")
    try:
        import subprocess

        results["gpu"] = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        pass

    recipes = args.recipes.split(",")
    results["decoder_attention"] = args.decoder_attention
    if not args.skip_tiny:
        t = time.perf_counter()
        results["tiny"] = tiny_checks(build(args.work, "tiny", args.decoder_attention, recipes))
        print("tiny", json.dumps(results["tiny"], indent=1), f"{time.perf_counter() - t:.0f} s", flush=True)
        args.out.write_text(json.dumps(results, indent=2))
    if args.shape != "none":
        t = time.perf_counter()
        bundles = build(args.work, args.shape, args.decoder_attention, recipes)
        results["build_s"] = time.perf_counter() - t
        print(f"built {args.shape} in {results['build_s']:.0f} s", flush=True)
        results[args.shape] = timings(bundles, args.tokens, args.repeats)
    args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
