"""One live stream's per-update cost and memory (bench.streaming runs it per bundle and mode).

    python -m bench.measure.stream BUNDLE --mode bounded --seconds 600 --threads 2
    python -m bench.measure.stream BUNDLE --mode reference --step-at 600     # one step, seeded

The stream is real speech (the LibriVox clips of pocketsphinx-testdata, looped; noise where
they are missing) fed in 2 s blocks as fast as the steps run, language forced to English so that
random weights commit text too (they never write ``<asr_text>``). Random weights never stop: each
step generates exactly ``--tokens`` (12: the 5 rolled back and about 3.5 tokens a second of new
speech, as English has), so the forced prefix grows as a real transcript does.

``--step-at T`` measures the one step that ends at T s without running the T s before it: the
session is given T - 2 s of audio and a transcript of the length the stream would have by then,
as if it had streamed them (the reference mode at 600 s would take hours to reach).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench.measure.common import emit, peak_rss_gb
from qwen_asr_edge.runtime import StreamingOptions, Transcriber

SPEECH = Path("/usr/share/pocketsphinx/test/data/librivox")
RATE = 16000


def speech(seconds: float) -> np.ndarray:
    """``seconds`` of real speech, the clips looped with 0.5 s of silence between them."""
    import soundfile as sf

    files = sorted(SPEECH.glob("*.wav"))
    if not files:
        rng = np.random.default_rng(0)
        return (rng.standard_normal(int(seconds * RATE)) * 0.1).astype(np.float32)
    gap = np.zeros(RATE // 2, np.float32)
    pieces = [p for f in files for p in (sf.read(f, dtype="float32")[0], gap)]
    one = np.concatenate(pieces)
    return np.resize(one, int(seconds * RATE))


def rss_gb() -> float:
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS")).split()[1]) / 1e6


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("bundle")
    p.add_argument("--mode", choices=("bounded", "reference"), default="bounded")
    p.add_argument("--seconds", type=float, default=60.0, help="stream this long")
    p.add_argument("--step-at", type=float, help="measure only the step that ends here (seeded)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tokens", type=int, default=12, help="tokens each step generates")
    p.add_argument("--utterance", type=float, default=30.0, help="max_utterance_seconds; 0: never cut")
    p.add_argument("--rss-every", type=float, default=60.0, help="record RSS every this many seconds")
    args = p.parse_args()
    tr = Transcriber(args.bundle, providers="cpu", threads=args.threads)
    options = StreamingOptions(
        mode=args.mode, max_new_tokens=args.tokens, max_utterance_seconds=args.utterance or None
    )
    session = tr.stream(language="English", options=options)
    step = round(options.chunk_seconds * RATE)
    out: dict = {"mode": session.mode, "threads": args.threads, "tokens": args.tokens}
    if args.step_at:
        total = round(args.step_at * RATE)
        wav = speech(args.step_at)
        steps = total // step - 1
        # What the stream would hold by then: the audio, and about 3.5 tokens/s of transcript.
        rng = np.random.default_rng(0)
        ids = rng.integers(1000, 100000, size=int(3.5 * (total - step) / RATE)).tolist()
        session._audio = wav[: total - step].copy()
        session._raw = tr.tokenizer.decode(ids)
        session._chunk_id = steps
        session._heard = total - step
        start = time.perf_counter()
        (update,) = session.feed(wav[total - step :], RATE)
        out.update(
            step_at=args.step_at,
            step_s=time.perf_counter() - start,
            timings={"encoder": update.timings.encode, "prefill": update.timings.prefill},
            peak_rss_gb=peak_rss_gb(),
        )
        emit(out)
        return
    wav = speech(args.seconds)
    updates, rss = [], []
    next_rss = args.rss_every
    for i in range(0, wav.shape[0], step):
        for u in session.feed(wav[i : i + step], RATE):
            updates.append([round(u.end, 3), round(u.compute_seconds, 4)])
            if u.end >= next_rss:
                rss.append([u.end, rss_gb(), peak_rss_gb()])  # now, and the high-water mark so far
                next_rss += args.rss_every
    final = session.finish()
    out.update(
        seconds=args.seconds,
        updates=updates,
        rss=rss,
        peak_rss_gb=peak_rss_gb(),
        committed_chars=len(final.committed),
    )
    emit(out)


if __name__ == "__main__":
    main()
