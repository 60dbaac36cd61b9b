"""The tiny bundles and the clip that ``bench/arm64.sh`` and ``bench/avx2.sh`` run on two CPUs.

    python -m bench.cpu_bundles WORK      # needs the [export] extra; reuses what WORK holds

Two tiny checkpoints, each exported to fp32 and quantized with int8 and int4: a unit-gain one
(peaky weights, clear margins) and a realistic one (trained models' massive activations, outlier
features and logit scale, ``export.synthetic``), on which INT8 activation ranges matter most.
The clip is 4 s of a tone in noise at 16 kHz.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np

CHECKPOINTS = {
    "unit": dict(seed=3, peaky=True, tie=False),
    "realistic": dict(seed=11, realistic=True, tie=True),
}
RECIPES = ("int8", "int4")


def bundles(work: Path) -> list[Path]:
    """The bundle folders, in the order the probe runs them: each checkpoint's fp32, then recipes."""
    return [work / "bundles" / f"{kind}-{recipe}" for kind in CHECKPOINTS for recipe in ("fp32", *RECIPES)]


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")  # onnx_ir's INFO chatter off
    import soundfile as sf

    from bench.bundles import current
    from qwen_asr_edge.export.build import build_bundle
    from qwen_asr_edge.export.synthetic import write_checkpoint
    from qwen_asr_edge.quant.recipes import get_recipe

    logging.getLogger("qwen_asr_edge").setLevel(logging.ERROR)
    work = Path(argv[0])
    for kind, settings in CHECKPOINTS.items():
        # Reused only if every bundle is today's (an int8 bundle of an earlier recipe is not).
        if current(work / "bundles" / f"{kind}-fp32") and all(
            current(work / "bundles" / f"{kind}-{r}", get_recipe(r)) for r in RECIPES
        ):
            continue
        checkpoint = write_checkpoint(work / f"checkpoint-{kind}", "tiny", **settings)
        fp32, _ = build_bundle(checkpoint, work / "bundles" / f"{kind}-fp32", overwrite=True)
        for recipe in RECIPES:
            build_bundle(fp32, work / "bundles" / f"{kind}-{recipe}", recipe=recipe, overwrite=True)
    rng = np.random.default_rng(50)
    t = np.arange(4 * 16000) / 16000
    wav = 0.1 * rng.standard_normal(t.size) + 0.2 * np.sin(2 * np.pi * 350 * t)
    sf.write(work / "clip.wav", wav.astype(np.float32), 16000)
    print(" ".join(str(b) for b in bundles(work)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
