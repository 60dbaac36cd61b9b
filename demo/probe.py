"""Does the encoder learn to hear? Train the encoder and its CTC head alone for a few minutes and
print the held-out greedy CTC character error rate as it goes.

    python -m demo.probe [--minutes 10] [--set FIELD=VALUE ...] [--work DIR] [--smoke]

A full run of the recipe takes 90 minutes, and its teacher-forced held-out loss falls even when the
encoder hears nothing: the decoder learns to recall likely sentences (README, "Toward open
vocabulary"). The CTC head's greedy output cannot recall anything, so its error rate on held-out
voices and sentences says within minutes whether a recipe change helps the encoder hear. ``--set``
overrides any field of demo.train's Recipe, e.g. ``--set batch_frames=3000 --set ctc_text=spoken``.
Prints one JSON line per ``eval_every`` steps, and the recipe and history at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

from .train import (
    MODEL_SIZES,
    SMOKE,
    Recipe,
    _data,
    _held_out_features,
    new_model,
    train,
)


def parse_overrides(pairs: list[str]) -> dict:
    """``["lr=1e-3", "ctc_text=spoken"]`` -> ``{"lr": 0.001, "ctc_text": "spoken"}``, each value
    converted to its Recipe field's type. Raises ValueError for an unknown field or a bad value."""
    fields = {f.name: f for f in dataclasses.fields(Recipe)}
    out: dict = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name not in fields or fields[name].type not in ("int", "float", "str", "bool"):
            raise ValueError(
                f"--set {pair!r}: expected FIELD=VALUE with FIELD one of the Recipe's scalar fields"
            )
        kind = fields[name].type
        try:
            if kind == "bool":
                out[name] = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}[
                    value.lower()
                ]
            else:
                out[name] = {"int": int, "float": float, "str": str}[kind](value)
        except (KeyError, ValueError):
            raise ValueError(f"--set {pair!r}: {name} takes {kind} values") from None
    return out


def probe(recipe: Recipe, work: Path, minutes: float, log=print) -> dict:
    """Train ``recipe``'s encoder and CTC head for ``minutes`` (or ``recipe.steps``) on its data set
    (synthesized into ``work`` if not there yet); returns the training report, whose history holds
    ``held_out_ctc_cer`` per ``recipe.eval_every`` steps."""
    _, _, data, records, _ = _data(recipe, work, log)
    with tempfile.TemporaryDirectory() as tmp:  # the layout only builds the tokenizer here
        _, batcher, model = new_model(Path(tmp), recipe, data)
    held_out = _held_out_features(records)
    return train(model, batcher, data, recipe, held_out, log, minutes, encoder_only=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m demo.probe", description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE")
    p.add_argument("--size", choices=sorted(MODEL_SIZES), help="one of the sweep's model sizes")
    p.add_argument("--work", type=Path, default=Path(".cache/demo-train"), help="synthesized data cache")
    p.add_argument("--smoke", action="store_true", help="the smoke recipe's data and model: checks the path")
    args = p.parse_args(argv)
    try:
        overrides = parse_overrides(args.overrides)
    except ValueError as e:
        p.error(str(e))
    base = SMOKE if args.smoke else dataclasses.replace(Recipe(), steps=10**6)  # the minutes end it
    recipe = dataclasses.replace(base, **{**(MODEL_SIZES[args.size] if args.size else {}), **overrides})
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    report = probe(recipe, args.work, args.minutes, log=lambda m: print(m, flush=True))
    changed = {k: v for k, v in dataclasses.asdict(recipe).items() if v != dataclasses.asdict(base).get(k)}
    print(json.dumps({"changed": changed, "minutes": round((time.time() - t0) / 60, 2), **report}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
