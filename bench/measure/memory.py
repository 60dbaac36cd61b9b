"""One recording transcribed from its file, for bench.memory: the process's peak RSS.

    python -m bench.measure.memory BUNDLE WAV

Loads the bundle, transcribes the file from disk with 2 new tokens per chunk (the decoding is
not what is measured) and prints its high-water mark.
"""

from __future__ import annotations

import argparse

from bench.measure.common import emit, peak_rss_gb
from qwen_asr_edge.runtime import Transcriber, TranscriptionOptions


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("bundle")
    p.add_argument("wav")
    args = p.parse_args()
    options = TranscriptionOptions(max_new_tokens=2)
    result = Transcriber(args.bundle, providers="cpu").transcribe(args.wav, options=options)
    emit({"peak_rss_gb": peak_rss_gb(), "duration": result.duration})


if __name__ == "__main__":
    main()
