"""Realistic synthetic checkpoints: the statistics they claim are measured, not assumed, and the
export validates them (its tolerance is relative to the output's scale)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from qwen_asr_edge.export.checkpoint import parse_config
from qwen_asr_edge.export.synthetic import activation_statistics, outlier_channels, write_checkpoint
from qwen_asr_edge.export.write import TOLERANCE
from qwen_asr_edge.runtime import load_bundle


def _summary(stats: dict) -> dict:
    later = stats["layers"][1:]
    return {
        "max_over_median": [round(layer["max_over_median"], 1) for layer in stats["layers"]],
        "attention_on_first": [round(layer["attention_on_first"], 3) for layer in later],
        "attention_on_sinks": [round(layer["attention_on_sinks"], 3) for layer in later],
        "top_logit": round(stats["top_logit"], 2),
    }


@pytest.mark.slow  # writes three tiny checkpoints (a 152k-row table each) and runs them
@pytest.mark.parametrize("tie", [True, False])
def test_realistic_checkpoints_have_real_models_statistics_and_default_ones_do_not(tmp_path, tie):
    """Massive activations from the first layer on, on the planted channels and the delimiter
    tokens; most attention on those tokens past the first layer; a top logit in the 20s-30s.
    The default (0.02) and peaky (unit-gain) weights have none of it."""
    realistic = write_checkpoint(tmp_path / "realistic", seed=11, realistic=True, tie=tie)
    stats = activation_statistics(realistic)
    print("realistic", "tied" if tie else "untied", _summary(stats))
    planted = outlier_channels(parse_config(realistic), seed=11)
    for layer in stats["layers"]:
        assert layer["max_over_median"] > 1000
        assert 1500 < layer["max_abs"] < 4000  # MASSIVE's 2400 on the sink tokens
        assert sorted(layer["top_channels"]) == sorted(planted.massive)
        assert layer["sink_positions"][0] == 0  # the first token, then each later <|im_start|>
    for layer in stats["layers"][1:]:
        assert layer["attention_on_sinks"] > 0.5
        assert layer["attention_on_first"] > 0.25
    assert 15 < stats["top_logit"] < 40

    for name, options in {"default": {}, "peaky": {"peaky": True}}.items():
        stats = activation_statistics(write_checkpoint(tmp_path / name, seed=11, tie=tie, **options))
        print(name, _summary(stats))
        for layer in stats["layers"]:
            assert layer["max_over_median"] < 50
            assert layer["sink_positions"] == []
            assert layer["attention_on_first"] < 0.2
        assert stats["top_logit"] < 8


@pytest.mark.slow  # exports a bundle
def test_realistic_checkpoint_exports_within_the_relative_tolerance(bundles):
    """Export validation compares onnxruntime with torch relative to the output's scale: logits of
    ~25 and hidden channels in the thousands pass on round-off alone."""
    m = load_bundle(bundles["realistic-full"]).manifest
    errors = {k: float(v) for k, v in m.producer.items() if k.startswith("validation_relative_error")}
    print(errors)
    assert {"validation_relative_error_decoder_logits", "validation_relative_error_encoder"} <= set(errors)
    assert max(errors.values()) < TOLERANCE / 10


def test_the_command_replaces_only_a_checkpoint_and_only_with_force(tmp_path, capsys):
    from qwen_asr_edge.export.synthetic import main

    (tmp_path / "mine.txt").write_text("keep")
    for argv, said in (
        ([str(tmp_path)], "not a checkpoint"),
        ([str(tmp_path), "--force"], "not a checkpoint"),  # --force replaces checkpoints only
        ([""], "an empty path"),  # an unset variable: not the current folder
        ([str(tmp_path / "mine.txt" / "sub")], "is a file, not a folder"),
    ):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2 and said in capsys.readouterr().err, argv
    assert (tmp_path / "mine.txt").read_text() == "keep"
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "config.json").write_text("{}")
    with pytest.raises(SystemExit) as e:
        main([str(tmp_path / "ck")])
    assert e.value.code == 2 and "pass --force" in capsys.readouterr().err
