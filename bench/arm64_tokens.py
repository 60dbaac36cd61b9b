"""Tokens and teacher-forced decisions of some bundles on one clip, as JSON: run on x86 and under
qemu-aarch64 by ``bench/arm64.sh``, which compares the two.

Run by path (``python bench/arm64_tokens.py``), with only the runtime installed: under emulation
there is no torch, no export and no repository root on the path.

    python bench/arm64_tokens.py CLIP.wav REFERENCE_BUNDLE [BUNDLE ...] > out.json

For every bundle: the greedy tokens of the clip, and, fed the reference bundle's tokens (teacher
forcing), the top token and its margin over the runner-up at every step, so that two machines can
be compared step by step where the decision is clear.
"""

from __future__ import annotations

import json
import logging
import platform
import sys
import time

import numpy as np

from qwen_asr_edge.runtime import Transcriber, TranscriptionOptions

MAX_NEW_TOKENS = 24


def probe(bundle: str, wav: np.ndarray, forced: list[int] | None) -> dict:
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
        "precision": transcriber.precision,
        "tokens": [int(t) for t in tokens],
        "top": [int(t) for t in logits.argmax(-1)],
        "margin": [round(float(m), 6) for m in top2[:, 1] - top2[:, 0]],
        "scale": round(float(np.abs(logits).max()), 4),
        "seconds": round(time.perf_counter() - start, 2),
    }


def main(argv: list[str]) -> int:
    clip, reference, *others = argv
    logging.getLogger("qwen_asr_edge").setLevel(logging.ERROR)  # capped chunks are expected here
    import soundfile as sf

    wav, rate = sf.read(clip, dtype="float32")
    assert rate == 16000, "the probe clip is written at 16 kHz"
    first = probe(reference, wav, None)
    results = [first] + [probe(b, wav, first["tokens"]) for b in others]
    machine = {"machine": platform.machine(), "python": platform.python_version()}
    import onnxruntime

    machine["onnxruntime"] = onnxruntime.__version__
    print(json.dumps({"machine": machine, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
