"""Two bundles against each other on a noisy machine: calls alternate in one process.

    python -m bench.ab BUNDLE_A BUNDLE_B [--seconds 11,30] [--contexts 50,500] [--rounds 12] [--threads 2]

``bench.speed`` measures one bundle after another, so a neighbour's load that comes and goes on a
shared machine lands on one of them; here each round runs A then B on the same clip, and the
table gives medians over rounds (the first two dropped as warm-up) and B / A. Per clip length:
the encoder alone (``Transcriber.encode``) and a whole transcription of 40 new tokens, stop ids
ignored; then one decode step at each of --contexts (median over 22 steps a round). It also says
whether the two encoders' outputs are bit-equal.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench.measure.common import clip, decode_step_seconds, text_prompt
from bench.utils import cpu, table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundles", nargs=2, type=Path)
    p.add_argument("--seconds", default="11,30", help="comma-separated clip lengths")
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tokens", type=int, default=40)
    p.add_argument("--contexts", default="50,500", help="decode step contexts, comma-separated")
    args = p.parse_args(argv)
    if args.rounds < 3:
        p.error("--rounds must be at least 3 (two are warm-up)")
    from qwen_asr_edge.runtime import Transcriber, TranscriptionOptions

    a, b = (Transcriber(path, providers="cpu", threads=args.threads) for path in args.bundles)
    options = TranscriptionOptions(max_new_tokens=args.tokens, ignore_stop=True)
    machine = cpu()
    print(f"{machine['model']} ({machine['level']}), {args.threads} threads")
    print(f"A = {args.bundles[0]}\nB = {args.bundles[1]}")
    rows = []
    rng = np.random.default_rng(0)
    for seconds in (float(s) for s in args.seconds.split(",")):
        wav = clip(seconds, rng)
        encoded = {}

        def encode(tr, wav=wav, encoded=encoded) -> None:
            encoded[tr] = tr.encode([wav]).numpy()

        def transcribe(tr, wav=wav) -> None:
            tr.transcribe(wav, options=options)

        for label, run in (("encoder", encode), (f"{args.tokens} tokens", transcribe)):
            times: dict[object, list[float]] = {a: [], b: []}
            for _ in range(args.rounds):
                for tr in (a, b):
                    start = time.perf_counter()
                    run(tr)
                    times[tr].append(time.perf_counter() - start)
            ms = [float(np.median(times[tr][2:]) * 1000) for tr in (a, b)]
            rows.append([f"{seconds:g} s", label, f"{ms[0]:.1f}", f"{ms[1]:.1f}", f"{ms[1] / ms[0]:.2f}"])
        same = np.array_equal(encoded[a], encoded[b])
        rows[-2][1] += " (bit-equal)" if same else " (outputs differ)"
    # Decode steps at a given context, as bench.speed takes them: a text-only prompt, then 24
    # steps per round (the first two of each dropped); A and B alternate per round.
    for context in (int(c) for c in args.contexts.split(",")):
        prompt = text_prompt(a, context, rng)
        steps: dict[object, list[float]] = {a: [], b: []}
        for _ in range(args.rounds):
            for tr in (a, b):
                steps[tr] += decode_step_seconds(tr, prompt)
        ms = [float(np.median(steps[tr]) * 1000) for tr in (a, b)]
        ratio = f"{ms[1] / ms[0]:.2f}"
        rows.append([f"context {context}", "decode step", f"{ms[0]:.2f}", f"{ms[1]:.2f}", ratio])
    print(f"medians of {args.rounds - 2} rounds")
    print(table(["clip", "what", "A ms", "B ms", "B / A"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
