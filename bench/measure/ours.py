"""One qwen-asr-edge bundle's speed and memory (bench.speed runs it per recipe).

    python -m bench.measure.ours BUNDLE --threads 2 --repeats 3 --tokens 40 [--batches]

Peak RSS is read right after the 11 s runs, before the longer and batched work raises it.
Timings come from the transcripts (``Transcript.timings``) and from ``Transcriber.decode``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.measure.common import clip, decode_step_seconds, emit, median, peak_rss_gb, text_prompt
from qwen_asr_edge.runtime import Transcriber, TranscriptionOptions


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("bundle")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--tokens", type=int, default=40)
    p.add_argument("--batches", action="store_true", help="also batch 1, 4 and 8 throughput")
    args = p.parse_args()
    start = time.perf_counter()
    tr = Transcriber(args.bundle, providers="cpu", threads=args.threads)
    out: dict[str, float] = {"load_s": time.perf_counter() - start}
    rng = np.random.default_rng(0)

    def e2e(wav: np.ndarray, tokens: int = args.tokens) -> tuple[float, float]:
        """(seconds end to end, prefill seconds) for exactly ``tokens`` new tokens."""
        options = TranscriptionOptions(max_new_tokens=tokens, ignore_stop=True)
        t = time.perf_counter()
        result = tr.transcribe(wav, options=options)
        return time.perf_counter() - t, result.timings.prefill[0]

    w11 = clip(11, rng)
    e2e(w11)  # warm-up
    runs = [e2e(w11) for _ in range(args.repeats)]
    out["e2e_11_s"] = median(s for s, _ in runs)
    out["prefill_ms"] = median(p for _, p in runs) * 1000
    out["first_token_11_s"] = median(e2e(w11, 1)[0] for _ in range(args.repeats))
    out["peak_rss_gb"] = peak_rss_gb()
    w60 = clip(60, rng)
    out["e2e_60_s"] = median(e2e(w60)[0] for _ in range(args.repeats))
    for seconds in (10, 120):
        wav = clip(seconds, rng)
        tr.encode([wav])  # warm-up
        out[f"encoder_ms_per_s_{seconds}"] = (
            median(tr.encode([wav]).seconds for _ in range(args.repeats)) * 1000 / seconds
        )
    # Decode steps at a given context: a text-only prompt of that length, then 24 steps.
    for context in (50, 500):
        prompt = text_prompt(tr, context, rng)
        steps: list[float] = []
        for _ in range(args.repeats):
            steps += decode_step_seconds(tr, prompt)
        out[f"step_ms_{context}"] = median(steps) * 1000
    if args.batches:
        clips = [clip(11, rng) for _ in range(8)]
        for batch in (1, 4, 8):
            options = TranscriptionOptions(max_new_tokens=args.tokens, ignore_stop=True, batch_size=batch)

            def throughput(options=options) -> float:
                t = time.perf_counter()
                tr.transcribe_batch(clips, options=options)
                return 8 * 11.0 / (time.perf_counter() - t)

            out[f"batch_{batch}_audio_s_per_s"] = median(
                throughput() for _ in range(max(1, args.repeats - 1))
            )
    emit(out)


if __name__ == "__main__":
    main()
