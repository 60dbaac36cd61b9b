"""The official qwen-asr package on the same checkpoint, clips and token count (bench.speed):
its processor (mel + prompt) and ``generate``.

    python -m bench.measure.official CHECKPOINT --dtype float32|bfloat16 --threads 2 --repeats 3 --tokens 40
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.measure.common import clip, emit, median, peak_rss_gb


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("checkpoint")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--tokens", type=int, default=40)
    args = p.parse_args()
    import torch
    from qwen_asr import Qwen3ASRModel

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    asr = Qwen3ASRModel.from_pretrained(
        args.checkpoint, dtype=getattr(torch, args.dtype), device_map="cpu", max_new_tokens=args.tokens
    )
    out: dict[str, float] = {"load_s": time.perf_counter() - start}
    rng = np.random.default_rng(0)
    prompt = asr._build_text_prompt("", None)

    def e2e(wav: np.ndarray, tokens: int) -> float:
        t = time.perf_counter()
        inputs = asr.processor(text=[prompt], audio=[wav], return_tensors="pt", padding=True)
        inputs = inputs.to(asr.model.dtype)
        with torch.inference_mode():
            seq = asr.model.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens)
        assert seq.sequences.shape[1] - inputs["input_ids"].shape[1] == tokens
        return time.perf_counter() - t

    w11 = clip(11, rng)
    e2e(w11, 2)
    out["e2e_11_s"] = median(e2e(w11, args.tokens) for _ in range(args.repeats))
    out["first_token_11_s"] = median(e2e(w11, 1) for _ in range(args.repeats))
    out["step_ms_ctx"] = (out["e2e_11_s"] - out["first_token_11_s"]) / (args.tokens - 1) * 1000
    out["peak_rss_gb"] = peak_rss_gb()
    w60 = clip(60, rng)
    out["e2e_60_s"] = median(e2e(w60, args.tokens) for _ in range(args.repeats))
    emit(out)


if __name__ == "__main__":
    main()
