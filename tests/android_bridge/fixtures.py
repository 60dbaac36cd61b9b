"""What the Kotlin tests read (``scripts/test-kotlin.sh`` runs this before them):

    python -m tests.android_bridge.fixtures OUT [--reuse]

OUT/bundles/NAME: mobile bundles with golden vectors from the Python runtime, made here from the
demo model and from a tiny random checkpoint in the official layout with the real Qwen3
vocabulary (fp32 and int4, as .ort and as .onnx); OUT/text: tokenizer, parser and guard cases;
OUT/native: small graphs for the JNI layer's tests. Nothing comes from the network.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

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
    with tempfile.TemporaryDirectory() as tmp:
        # Peaky (unit-gain) weights give argmax margins far above round-off, as the parity tests'.
        checkpoint = write_checkpoint(
            Path(tmp) / "tiny", "tiny", seed=5, peaky=True, tie=True, heads=(8, 2), vocab_dir=VOCAB_DIR
        )
        fp32 = export_bundle(str(checkpoint), Path(tmp) / "tiny-fp32")
        int4, _ = quantize_bundle(fp32, Path(tmp) / "tiny-int4", get_recipe("int4"))
        made += [
            pack_bundle(fp32, out / "tiny-fp32-ort"),
            pack_bundle(fp32, out / "tiny-fp32-onnx", graph_format="onnx"),
            pack_bundle(int4, out / "tiny-int4-ort"),
        ]
    return made


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
    print(f"fixtures: {len(bundles)} mobile bundles, text and native cases in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
