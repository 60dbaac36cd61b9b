"""What the Kotlin tests read (``scripts/test-kotlin.sh`` runs this before them):

    python -m tests.android_bridge.fixtures OUT [--reuse]

OUT/bundles/NAME: mobile bundles with golden vectors from the Python runtime, made here from the
demo model and from a tiny random checkpoint in the official layout with the real Qwen3
vocabulary (fp32 and int4, as .ort and as .onnx); OUT/text: tokenizer, parser and guard cases;
OUT/stream: the Python runtime's streaming updates on some of those bundles; OUT/long: its
transcripts of a recording of several chunks on the same bundles; OUT/native: small
graphs for the JNI layer's tests. Nothing comes from the network.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tests.support import VOCAB_DIR

DEMO_BUNDLE = Path(__file__).resolve().parents[2] / "runtime" / "assets" / "demo" / "bundle"


def write_bundles(out: Path) -> list[Path]:
    """The mobile bundles the Kotlin parity tests run, each with its golden vectors."""
    from qwen_asr_edge.android_bridge.pack import pack_bundle
    from qwen_asr_edge.export.synthetic import write_checkpoint
    from qwen_asr_edge.export.write import export_bundle
    from qwen_asr_edge.quant.quantize import quantize_bundle
    from qwen_asr_edge.quant.recipes import get_recipe

    out.mkdir(parents=True, exist_ok=True)
    made = [
        pack_bundle(DEMO_BUNDLE, out / "demo-ort"),
        pack_bundle(DEMO_BUNDLE, out / "demo-onnx", graph_format="onnx"),
    ]
    streams = out.parent / "stream"
    write_streams(DEMO_BUNDLE, "demo-ort", streams)
    write_long(DEMO_BUNDLE, "demo-ort", out.parent / "long")
    with tempfile.TemporaryDirectory() as tmp:
        # Peaky (unit-gain) weights give argmax margins far above round-off, as the parity tests'.
        checkpoint = write_checkpoint(
            Path(tmp) / "tiny", "tiny", seed=5, peaky=True, tie=True, heads=(8, 2), vocab_dir=VOCAB_DIR
        )
        fp32 = export_bundle(str(checkpoint), Path(tmp) / "tiny-fp32")
        int4, _ = quantize_bundle(fp32, Path(tmp) / "tiny-int4", get_recipe("int4"))
        write_streams(fp32, "tiny-fp32-ort", streams)
        write_long(fp32, "tiny-fp32-ort", out.parent / "long")
        made += [
            pack_bundle(fp32, out / "tiny-fp32-ort"),
            pack_bundle(fp32, out / "tiny-fp32-onnx", graph_format="onnx"),
            pack_bundle(int4, out / "tiny-int4-ort"),
        ]
    return made


def stream_audio(seconds: int = 36) -> np.ndarray:
    """``seconds`` at 16 kHz: the demo's two examples over and over with pauses and a little
    noise, so a stream commits text, starts utterances and cuts one at 30 s, and a recording
    over 30 s is cut in its pauses."""
    from qwen_asr_edge.runtime.audio import load_audio
    from qwen_asr_edge.runtime.demo import demo_examples

    clips = [load_audio(e["audio"]) for e in demo_examples()]
    rng = np.random.default_rng(0)
    parts, total = [], 0
    while total < seconds * 16000:
        for clip in clips:
            gap = (rng.standard_normal(int(rng.uniform(0.3, 1.2) * 16000)) * 1e-3).astype(np.float32)
            parts += [clip, gap]
            total += clip.size + gap.size
    return np.concatenate(parts)[: seconds * 16000]


def write_streams(bundle: Path, name: str, out: Path) -> None:
    """OUT/NAME.json: every update of the Python runtime's streaming session (the reference
    mode: what the Kotlin port does) on ``stream_audio`` fed in 0.7 s blocks, detected and
    forced language and with a context; OUT/NAME.pcm: the audio (float32 little-endian)."""
    from qwen_asr_edge.runtime import Transcriber
    from qwen_asr_edge.runtime.streaming import StreamingOptions

    out.mkdir(parents=True, exist_ok=True)
    audio = stream_audio()
    audio.astype("<f4").tofile(out / f"{name}.pcm")
    asr = Transcriber(bundle, providers="cpu")
    block = int(0.7 * 16000)
    cases = []
    for label, language, context, seconds in (
        ("detect", None, "", 36),
        ("forced", asr.languages[0], "", 12),
        ("context", None, "Lautstärke shopping", 12),
    ):
        session = asr.stream(language, context, StreamingOptions(mode="reference"))
        wav = audio[: seconds * 16000]
        updates = [u for i in range(0, wav.size, block) for u in session.feed(wav[i : i + block])]
        updates.append(session.finish())
        cases.append(
            {
                "name": label,
                "language": language,
                "context": context,
                "samples": int(wav.size),
                "block": block,
                "updates": [
                    {
                        "committed": u.committed,
                        "tentative": u.tentative,
                        "language": u.language,
                        "new_committed": u.new_committed,
                        "is_final": u.is_final,
                    }
                    for u in updates
                ],
            }
        )
    (out / f"{name}.json").write_text(json.dumps({"pcm": f"{name}.pcm", "cases": cases}, ensure_ascii=False))


def write_long(bundle: Path, name: str, out: Path) -> None:
    """OUT/NAME.json: the Python runtime's transcripts of a 75 s recording (three chunks cut at
    quiet points), detected and forced language; OUT/NAME.pcm: the audio (float32 little-endian,
    at twice full scale: the peak normalisation comes first)."""
    from qwen_asr_edge.runtime import Transcriber

    out.mkdir(parents=True, exist_ok=True)
    audio = 2 * stream_audio(75)
    audio.astype("<f4").tofile(out / f"{name}.pcm")
    asr = Transcriber(bundle, providers="cpu")
    cases = []
    for label, language in (("detect", None), ("forced", asr.languages[0])):
        got = asr.transcribe(audio, language=language)
        cases.append(
            {
                "name": label,
                "language": language,
                "text": got.text,
                "detected_language": got.language,
                "languages": got.languages,
                "segments": [
                    {
                        "start": s.start,
                        "end": s.end,
                        "text": s.text,
                        "language": s.language,
                        "tokens": s.tokens,
                        "finish_reason": s.finish_reason,
                    }
                    for s in got.segments
                ],
            }
        )
    (out / f"{name}.json").write_text(json.dumps({"pcm": f"{name}.pcm", "cases": cases}, ensure_ascii=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.android_bridge.fixtures", description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--reuse", action="store_true", help="keep OUT when it is complete")
    args = parser.parse_args(argv)
    done = args.out / ".complete"
    if args.reuse and done.is_file():
        print(f"fixtures: reusing {args.out}")
        return 0
    start = time.perf_counter()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    from tests.android_bridge.native_models import write_native_models
    from tests.android_bridge.text_cases import write_text_cases

    write_native_models(args.out / "native")
    write_text_cases(args.out)
    bundles = write_bundles(args.out / "bundles")
    done.write_text("\n".join(b.name for b in bundles) + "\n")
    seconds = time.perf_counter() - start
    print(f"fixtures: {len(bundles)} mobile bundles, streams, text and native cases in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
