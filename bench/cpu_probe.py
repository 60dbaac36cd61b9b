"""Tokens and teacher-forced decisions of some bundles on one clip, as one JSON line: run on this
machine and on another CPU (aarch64 under qemu by ``bench/arm64.sh``, an AVX2-only x86 under
``qemu-x86_64 -cpu Haswell`` by ``bench/avx2.sh``); ``bench/cpu_compare.py`` compares two runs.

Run by path (``python bench/cpu_probe.py``), with only the runtime installed: under emulation
there may be no torch, no export and no repository root on the path.

    python bench/cpu_probe.py LABEL CLIP.wav BUNDLE [BUNDLE ...] >> out.jsonl

For every bundle: the greedy tokens of the clip, and, fed the tokens of the last fp32 bundle
before it (teacher forcing; an fp32 bundle is fed its own), the top token and its margin over the
runner-up at every step, so that two machines can be compared step by step where the decision is
clear. LABEL names the CPU (under qemu-user, /proc/cpuinfo describes the host, not the emulated
CPU).
"""

from __future__ import annotations

import json
import logging
import platform
import sys
import time
from pathlib import Path

import numpy as np

from qwen_asr_edge.runtime import Transcriber, TranscriptionOptions

MAX_NEW_TOKENS = 24


def probe(bundle: str, wav: np.ndarray, forced: list[int] | None) -> dict:
    name = Path(bundle).name if Path(bundle).name != "bundle" else Path(bundle).parent.name  # demo/bundle
    transcriber = Transcriber(bundle, providers="cpu", threads=1)
    start = time.perf_counter()
    options = TranscriptionOptions(max_new_tokens=MAX_NEW_TOKENS)
    tokens = transcriber.transcribe(wav, language="English", options=options).segments[0].tokens
    encoding = transcriber.encode([wav])
    prompt = transcriber.prompt_ids(int(encoding.lengths[0]), "", "English")
    logits = transcriber.forced_logits(prompt, encoding.row(0), forced if forced is not None else tokens)
    top2 = np.sort(logits, axis=-1)[:, -2:]
    return {
        "bundle": bundle,
        "name": name,
        "precision": transcriber.precision,
        "tokens": [int(t) for t in tokens],
        "top": [int(t) for t in logits.argmax(-1)],
        "margin": [round(float(m), 6) for m in top2[:, 1] - top2[:, 0]],
        "scale": round(float(np.abs(logits).max()), 4),
        "seconds": round(time.perf_counter() - start, 2),
    }


def main(argv: list[str]) -> int:
    label, clip, *paths = argv
    logging.getLogger("qwen_asr_edge").setLevel(logging.ERROR)  # capped chunks are expected here
    import soundfile as sf

    wav, rate = sf.read(clip, dtype="float32")
    assert rate == 16000, "the probe clip is written at 16 kHz"
    results, forced = [], None
    for path in paths:
        fp32 = json.loads((Path(path) / "manifest.json").read_text()).get("recipe", "fp32") == "fp32"
        results.append(probe(path, wav, None if fp32 else forced))
        if fp32:
            forced = results[-1]["tokens"]
    machine = {"label": label, "machine": platform.machine(), "python": platform.python_version()}
    import onnxruntime

    machine["onnxruntime"] = onnxruntime.__version__
    print(json.dumps({"machine": machine, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
