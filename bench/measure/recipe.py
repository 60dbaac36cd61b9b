"""One quantized bundle on an 11 s clip (bench.quantization runs it per recipe): load time, end
to end for 1 and 41 new tokens, the median decode call, peak RSS.

    python -m bench.measure.recipe BUNDLE --threads 2 --repeats 3
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.measure.common import clip, emit, median, peak_rss_gb


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("bundle")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    start = time.perf_counter()
    from qwen_asr_edge.runtime import Transcriber, TranscriptionOptions

    tr = Transcriber(args.bundle, providers="cpu", threads=args.threads)
    load = time.perf_counter() - start
    wav = clip(11, np.random.default_rng(0))
    steps: list[float] = []

    def run(tokens: int) -> float:
        t = time.perf_counter()
        result = tr.transcribe(wav, options=TranscriptionOptions(max_new_tokens=tokens))
        steps.extend(result.timings.steps)
        return time.perf_counter() - t

    run(2)  # warm-up
    steps.clear()
    one = median(run(1) for _ in range(args.repeats))
    many = median(run(41) for _ in range(args.repeats))
    emit(
        {
            "load_s": load,
            "first_token_s": one,
            "e2e_41_s": many,
            "ms_per_token": median(steps) * 1000,
            "peak_rss_gb": peak_rss_gb(),
        }
    )


if __name__ == "__main__":
    main()
