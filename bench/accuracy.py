"""Accuracy card: the demo model's held-out scores per quantization recipe, kind of clip, language
and unseen voice.

    python -m bench.accuracy [--checkpoint DIR] [--recipes fp32,int8,int4] [--work DIR]

The demo model (demo/train.py; its bundle ships in the package) is the one model here with trained
weights, so this is where quantization recipes are judged: random weights overstate what
quantization costs. Its held-out set (sentences and voices training never met: template
sentences, open-vocabulary sentences of common words, 20-30 s recordings of several sentences
with pauses, and non-speech clips; demo/data.py) is rebuilt from the checkpoint's recipe.json
with the same seed and cached under --work; the checkpoint is exported to fp32 and quantized with
each recipe, and every bundle transcribes every clip through the runtime from its WAV file
(demo/scoring.py). WER is jiwer's over lower-cased words without punctuation; a non-speech clip
counts as right when the text is empty.

Beside the demo model's columns, each recipe's quality report (``quant.quality``: teacher-forced
on fp32's own tokens, generated audio) on two tiny random checkpoints: unit-gain weights
("random") and weights with trained models' activation statistics ("realistic": massive
activations, outlier features, attention sinks, logit scale; ``export.synthetic``). Tiny, because
a deep random stack amplifies any error (see bench.layer_errors, which measures the full-size
shape one layer at a time).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from bench.bundles import variant
from bench.cpu_bundles import CHECKPOINTS
from bench.utils import cpu, dir_size, table

RESULTS = Path(__file__).resolve().parent / "results"


def held_out(checkpoint: Path, work: Path) -> list[dict]:
    from demo.data import Sizes, plan, read_test_set, test_set
    from demo.train import Recipe

    recipe = json.loads((checkpoint / "recipe.json").read_text(encoding="utf-8"))["recipe"]
    if "train" not in recipe:  # a checkpoint from before the data had kinds: today's held-out set
        recipe = {"train": vars(Recipe().train), "test": vars(Recipe().test), "seed": recipe["seed"]}
    _, test = plan(Sizes(**recipe["train"]), Sizes(**recipe["test"]), recipe["seed"])
    return read_test_set(test_set(test, work))


def bundles(checkpoint: Path, work: Path, recipes: list[str]) -> dict[str, Path]:
    """fp32 and each recipe or variant (``bench.bundles.variant``: "int8-b128", "int4-head8")."""
    from qwen_asr_edge.export.build import build_bundle
    from qwen_asr_edge.quant.quantize import quantize_bundle

    fp32 = build_bundle(checkpoint, work / "bundles" / "fp32", overwrite=True)[0]
    out = {"fp32": fp32}
    for name in recipes:  # each quantized from the one fp32 export
        if name != "fp32":
            out[name] = quantize_bundle(fp32, work / "bundles" / name, variant(name), overwrite=True)[0]
    return out


# The tiny checkpoints the cross-CPU scripts run too (unit gain and realistic).
SYNTHETIC = {"random": CHECKPOINTS["unit"], "realistic": CHECKPOINTS["realistic"]}


def synthetic_reports(work: Path, recipes: list[str]) -> dict[str, dict[str, dict]]:
    """{weights kind: {recipe: quality report}} on tiny checkpoints (fp32 is the reference)."""
    from qwen_asr_edge.export.build import build_bundle
    from qwen_asr_edge.export.synthetic import write_checkpoint
    from qwen_asr_edge.quant.quantize import quantize_bundle

    out: dict[str, dict[str, dict]] = {}
    for kind, settings in SYNTHETIC.items():
        checkpoint = write_checkpoint(work / "synthetic" / kind / "checkpoint", "tiny", **settings)
        fp32, _ = build_bundle(checkpoint, work / "synthetic" / kind / "fp32", overwrite=True)
        out[kind] = {
            name: quantize_bundle(fp32, work / "synthetic" / kind / name, variant(name), overwrite=True)[1]
            for name in recipes
            if name != "fp32"
        }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, help="a demo checkpoint (default: the shipped one)")
    p.add_argument("--recipes", default="fp32,int8,int4")
    p.add_argument("--work", type=Path, default=Path(".cache/bench-accuracy"))
    p.add_argument("--out", type=Path, default=RESULTS / "accuracy-demo.json")
    args = p.parse_args(argv)
    # Configured first, so onnxruntime's quantizers cannot install their INFO-level root handler.
    logging.basicConfig(level=logging.WARNING, format="%(message)s")

    from demo import CHECKPOINT
    from demo.scoring import score

    checkpoint = args.checkpoint or CHECKPOINT
    records = held_out(checkpoint, args.work)
    built = bundles(checkpoint, args.work, args.recipes.split(","))
    results = {}
    for name, path in built.items():
        t = time.perf_counter()
        results[name] = {**score(path, records)[0], "seconds": round(time.perf_counter() - t, 1)}
        results[name]["size_mb"] = round(dir_size(path) / 1e6, 2)
    synthetic = synthetic_reports(args.work, list(results))
    base = results["fp32"]["wer"]

    def teacher_forced(kind: str, name: str) -> str:
        report = synthetic[kind].get(name)
        if report is None:
            return "-"
        d = report["decoder"]
        return f"{d['top1_agreement']:.1%} / {d['logits_cosine_mean']:.4f}"

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x:.1%}"

    headers = ["bundle", "size MB", "template WER", "open WER", "multi WER", "non-speech empty", "WER en",
               "WER de", "language ID", "WER / fp32", "random: top-1 / logits cos",
               "realistic: top-1 / logits cos"]  # fmt: skip
    rows = [
        [
            name,
            r["size_mb"],
            *(pct(r["kinds"][k]["wer"]) for k in ("template", "open", "multi")),
            pct(r["kinds"]["non-speech"]["empty_rate"]),
            pct(r["wer_English"]),
            pct(r["wer_German"]),
            pct(r["language_accuracy"]),
            f"{r['wer'] / base:.2f}" if base else "-",
            teacher_forced("random", name),
            teacher_forced("realistic", name),
        ]
        for name, r in results.items()
    ]
    groups = sorted(results["fp32"]["voice_groups"])
    voice_rows = [
        [
            g,
            results["fp32"]["voice_groups"][g]["clips"],
            *(pct(r["voice_groups"][g]["wer"]) for r in results.values()),
        ]
        for g in groups
    ]
    machine = cpu()
    print(f"held-out set: {len(records)} clips, {checkpoint}; {machine['model']} ({machine['level']})")
    print(table(headers, rows))
    print("\nWER by unseen voice (all clips with speech)")
    print(table(["voice", "clips", *results], voice_rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {"clips": len(records), "cpu": machine, "results": results, "synthetic": synthetic}
    args.out.write_text(json.dumps(record, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
