"""The sweep that chose the demo model's size: each candidate trains on the same data for the same
wall-clock budget, then its fp32 export is scored through the runtime on the held-out set.

    python -m demo.sweep [--minutes 6] [--candidates small,medium,large] [--out FILE]

Same budget, not same steps, because the question is what two cores make best of their time; a
short budget favours small models, so the chosen one is the largest whose score is already ahead.
Prints a table and writes bench/results/demo-sweep.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from .train import MODEL_SIZES, Recipe, _data, _seed_everything, train_checkpoint

# Each size with the recipe's training options, and the medium model as the first sweep trained
# it (CTC on the written transcript's BPE tokens at the encoder's frame rate, full attention,
# shuffled from the start).
# Each row of bench/results/demo-sweep.json records the options it was trained with (TRAINING).
CANDIDATES: dict[str, dict] = {
    **MODEL_SIZES,
    "medium-tokens-full": {
        **MODEL_SIZES["medium"],
        "ctc_units": "tokens",
        "ctc_text": "written",
        "ctc_upsample": 1,
        "encoder_attention": "full",
        "shortest_first": False,
    },
}
TRAINING = (
    "ctc_units",
    "ctc_text",
    "ctc_upsample",
    "encoder_attention",
    "shortest_first",
    "encoder_pretrain_steps",
)
RESULTS = Path(__file__).resolve().parent.parent / "bench" / "results" / "demo-sweep.json"


def run(name: str, minutes: float, work: Path, log=print) -> dict:
    from qwen_asr_edge.export.build import build_bundle

    from .scoring import score

    # A few minutes leave no room for the recipe's encoder pre-training (4000 steps, 9 minutes
    # here): without this the budget would end before the decoder had trained at all.
    recipe = replace(Recipe(), encoder_pretrain_steps=0, **CANDIDATES[name])
    _seed_everything(recipe.seed)
    _, _, data, records, _ = _data(recipe, work, log)
    log(f"candidate {name}")
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "checkpoint"
        n_params, report = train_checkpoint(ckpt, recipe, data, records, log, minutes)
        bundle, _ = build_bundle(ckpt, Path(tmp) / "bundle")
        t = time.time()
        result, _ = score(bundle, records)
    kinds = result["kinds"]
    return {
        "candidate": name,
        **CANDIDATES[name],
        **{k: getattr(recipe, k) for k in TRAINING},
        "parameters": n_params,
        "minutes": minutes,
        "steps": report["steps"],
        "held_out_ce": report["history"][-1]["held_out_ce"],
        "held_out_ctc_cer": report["history"][-1]["held_out_ctc_cer"],
        "wer": result["wer"],
        **{f"wer_{k}": kinds[k]["wer"] for k in ("template", "open", "multi")},
        "non_speech_empty": kinds["non-speech"]["empty_rate"],
        "score_seconds": round(time.time() - t, 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m demo.sweep", description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=6.0, help="training budget per candidate")
    p.add_argument("--candidates", default="small,medium,large")
    p.add_argument("--work", type=Path, default=Path(".cache/demo-train"))
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    rows = [
        run(name, args.minutes, args.work, lambda m: print(m, flush=True))
        for name in args.candidates.split(",")
    ]
    keys = ["candidate", "parameters", "steps", "held_out_ce", "wer_template", "wer_open", "wer_multi",
            "non_speech_empty"]  # fmt: skip
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")
    args.out.write_text(json.dumps({"minutes": args.minutes, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
