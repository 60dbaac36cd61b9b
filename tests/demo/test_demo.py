"""The built-in demo model: it really transcribes, it is the CLI's offline default, and the script
that trained it still runs; plus ``--model`` exporting on first use and caching."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from demo import CHECKPOINT
from demo import text as demo_text
from demo.data import MAX_SECONDS, NO_SPEECH, Sizes, plan
from demo.speech import missing_tools
from qwen_asr_edge.models import cache_key
from qwen_asr_edge.runtime import Transcriber, load_bundle
from qwen_asr_edge.runtime.demo import DEMO_NOTE, demo_bundle, demo_examples
from tests.support import require, run_cli


def offline_env(tmp_path: Path) -> dict:
    """A user's environment with no network and nothing cached: hub lookups fail fast."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {
        **os.environ,
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "HF_HUB_OFFLINE": "1",
        "QWEN_ASR_EDGE_CACHE": str(tmp_path / "cache"),
    }


@pytest.mark.parametrize("example", demo_examples(), ids=lambda e: e["language"])
def test_demo_bundle_transcribes_its_examples_exactly(example):
    result = Transcriber(demo_bundle()).transcribe(example["audio"])
    assert result.text == example["text"]
    assert result.language == example["language"]


def test_cli_defaults_to_the_demo_model_offline(tmp_path):
    examples = demo_examples()
    result = run_cli("transcribe", *(e["audio"] for e in examples), env=offline_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == f"note: {DEMO_NOTE}"  # said once, in one line
    lines = result.stdout.strip().splitlines()
    assert lines == [f"{e['audio']}: {e['text']}" for e in examples]
    assert not (tmp_path / "cache").exists()  # the default needs no cache


def test_demo_checkpoint_keeps_its_special_tokens_at_its_own_ids():
    """The demo's vocabulary is small, so every special id differs from the real 151643+: the
    exporter must read them from the checkpoint and the runtime from the manifest."""
    config = json.loads((CHECKPOINT / "config.json").read_text())
    vocab = json.loads((CHECKPOINT / "vocab.json").read_text())
    added = json.loads((CHECKPOINT / "tokenizer_config.json").read_text())["added_tokens_decoder"]
    ids = {rec["content"]: int(i) for i, rec in added.items()}
    assert min(ids.values()) == len(vocab) < 1000
    thinker = config["thinker_config"]
    assert thinker["audio_token_id"] == ids["<|audio_pad|>"]
    assert thinker["audio_start_token_id"] == ids["<|audio_start|>"]
    assert thinker["text_config"]["vocab_size"] >= max(ids.values()) + 1
    tokens = load_bundle(demo_bundle()).manifest.tokens
    assert tokens.audio_pad == ids["<|audio_pad|>"]
    assert tokens.im_end == ids["<|im_end|>"]
    assert load_bundle(demo_bundle()).manifest.languages == ["English", "German"]
    recipe = json.loads((CHECKPOINT / "recipe.json").read_text())
    assert recipe["recipe"]["seed"] == 0


def test_demo_model_is_small():
    size = sum(f.stat().st_size for d in (CHECKPOINT, demo_bundle()) for f in d.iterdir())
    assert size < 10.5e6, f"{size / 1e6:.1f} MB"


def test_number_words():
    assert demo_text.english_number(21) == "twenty-one"
    assert demo_text.english_number(305) == "three hundred five"
    assert demo_text.english_ordinal(23) == "twenty-third"
    assert demo_text.german_number(21) == "einundzwanzig"
    assert demo_text.german_number(101) == "einhunderteins"
    assert demo_text.german_ordinal(3) == "dritten"
    assert demo_text.german_ordinal(17) == "siebzehnten"
    assert demo_text.german_ordinal(30) == "dreißigsten"


def test_sentences_are_written_with_digits_and_spoken_in_words():
    rng = random.Random(0)
    for lang in ("English", "German"):
        for _ in range(200):
            written, spoken = demo_text.sentence(lang, rng)
            assert "{" not in written and not any(ch.isdigit() for ch in spoken)
            assert written[-1] in ".?" and written[0].isupper()


def test_held_out_set_shares_no_sentence_or_voice_with_training():
    train, test = plan(Sizes(60, 120, 10, 12), Sizes(10, 10, 3, 6), seed=3)
    seen = {s for c in train for s in c.written}
    assert seen.isdisjoint({s for c in test for s in c.written})
    speech = [c for c in test if c.kind != "non-speech"]
    assert {c.voice for c in train}.isdisjoint({c.voice for c in speech})
    assert {c.language for c in speech} == {"English", "German"}
    assert plan(Sizes(60, 120, 10, 12), Sizes(10, 10, 3, 6), seed=3) == (train, test)  # seeded
    count = {(k, lang): sum(c.kind == k and c.language == lang for c in test) for k in ("open", "multi")
             for lang in ("English", "German")}  # fmt: skip
    assert set(count.values()) == {10, 3}
    multi = [c for c in test if c.kind == "multi"]
    assert all(len(c.written) >= 3 and len(set(c.written)) == len(c.written) for c in multi)
    silent = [c for c in test if c.kind == "non-speech"]
    assert len(silent) == 6 and all(c.language == NO_SPEECH and c.text == "" for c in silent)
    assert all(0.5 <= c.seconds <= MAX_SECONDS for c in silent)


@pytest.mark.slow
def test_training_script_smoke(tmp_path):
    require(not missing_tools(), f"speech synthesis tools ({', '.join(missing_tools())})")
    import math

    from demo import train as train_demo
    from qwen_asr_edge.runtime.parsing import parse_output

    out = tmp_path / "demo"
    assert train_demo.main([str(out), "--smoke", "--work", str(tmp_path / "work")]) == 0
    recipe = json.loads((out / "checkpoint" / "recipe.json").read_text())
    assert recipe["recipe"]["steps"] == train_demo.SMOKE.steps
    history = recipe["training"]["history"]
    assert [h["step"] for h in history] == [train_demo.SMOKE.eval_every, train_demo.SMOKE.steps]
    # It learned: finite losses, the training loss fell, the held-out loss is below chance (a
    # uniform guess over the vocabulary costs log(vocab) nats per token). Whether the held-out
    # loss also fell between steps 8 and 16 is chance on 22 training clips (it rose by 0.01 with
    # the character CTC head, fell with the BPE one), so it is not asserted.
    losses = [h[k] for h in history for k in ("ce", "ctc", "held_out_ce")]
    assert all(math.isfinite(x) and x > 0 for x in losses)
    assert history[-1]["ce"] < history[0]["ce"]
    # the CTC head's greedy spelling of held-out speech: an error rate, not yet a low one
    assert all(isinstance(h["held_out_ctc_cer"], float) and h["held_out_ctc_cer"] >= 0.0 for h in history)
    manifest = load_bundle(out / "bundle").manifest
    assert history[-1]["held_out_ce"] < math.log(manifest.model.vocab_size)
    held_out = recipe["held_out"]
    sizes = train_demo.SMOKE.test
    assert held_out["clips"] == 2 * (sizes.template + sizes.open + sizes.multi) + sizes.non_speech
    assert isinstance(held_out["wer"], float) and 0.0 <= held_out["wer"] < math.inf
    assert set(held_out["kinds"]) == {"template", "open", "multi", "non-speech"}
    assert recipe["shipped"] in ("fp32", "int8") and set(recipe["held_out_by_bundle"]) == {"fp32", "int8"}
    assert 0.0 <= held_out["language_accuracy"] <= 1.0
    assert manifest.tokens.audio_pad < 1000
    examples = json.loads((out / "examples" / "examples.json").read_text())
    assert {e["language"] for e in examples} == {"English", "German"}
    # The exported bundle runs through the runtime, and after 16 steps already speaks the frame of
    # the official output format that the runtime parses: "language X<asr_text>text".
    transcriber = Transcriber(out / "bundle")
    result = transcriber.transcribe(out / "examples" / examples[0]["audio"])
    raw = transcriber.tokenizer.decode(result.segments[0].tokens)
    assert raw.startswith("language") and "<asr_text>" in raw
    assert parse_output(raw)[0] in ("", "English", "German")


@pytest.mark.slow
def test_probe_trains_the_encoder_alone_and_scores_its_ctc_spelling(tmp_path, capsys):
    require(not missing_tools(), f"speech synthesis tools ({', '.join(missing_tools())})")
    from demo import probe

    args = ["--smoke", "--minutes", "5", "--work", str(tmp_path), "--set", "ctc_text=written"]
    assert (
        probe.main([*args, "--set", "steps=6", "--set", "eval_every=3", "--set", "n_window_infer=100"]) == 0
    )
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["changed"] == {"steps": 6, "eval_every": 3, "ctc_text": "written", "n_window_infer": 100}
    assert [h["step"] for h in report["history"]] == [3, 6]
    # encoder only: no decoder losses, a finite CTC loss and a greedy CER on held-out speech
    assert all(
        "ce" not in h and 0 < h["ctc"] < float("inf") and h["held_out_ctc_cer"] >= 0
        for h in report["history"]
    )
    with pytest.raises(SystemExit):
        probe.main(["--smoke", "--set", "no_such_field=1"])
    assert "no_such_field" in capsys.readouterr().err


@pytest.mark.slow
def test_model_option_exports_on_first_use_and_reuses_the_cache(checkpoints, tmp_path):
    import os
    import shutil

    env = offline_env(tmp_path)
    clip = demo_examples()[0]["audio"]
    checkpoint = shutil.copytree(checkpoints["tied"], tmp_path / "ck")
    args = ("transcribe", clip, "--model", checkpoint, "--max-new-tokens", "3")
    first = run_cli(*args, env=env)
    assert first.returncode == 0, first.stderr
    assert "exporting" in first.stderr and "first use" in first.stderr
    cached = tmp_path / "cache" / "bundles" / cache_key(str(checkpoint))
    assert (cached / "manifest.json").is_file()
    stamp = (cached / "manifest.json").stat().st_mtime_ns
    second = run_cli(*args, env=env)
    assert second.returncode == 0, second.stderr
    assert "exporting" not in second.stderr and second.stdout == first.stdout
    assert (cached / "manifest.json").stat().st_mtime_ns == stamp

    # New weights written to the same folder: the cached bundle is built again, not reused.
    weights = next(checkpoint.glob("*.safetensors"))
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    third = run_cli(*args, env=env)
    assert third.returncode == 0, third.stderr
    assert "checkpoint folder changed since; building it again" in third.stderr
    assert (cached / "manifest.json").stat().st_mtime_ns != stamp


@pytest.mark.slow
def test_model_option_with_a_recipe_caches_the_quantized_bundle(checkpoints, tmp_path):
    clip = demo_examples()[0]["audio"]
    args = ("transcribe", clip, "--model", checkpoints["tied"], "--recipe", "int8", "--max-new-tokens", "3")
    result = run_cli(*args, env=offline_env(tmp_path))
    assert result.returncode == 0, result.stderr
    cached = tmp_path / "cache" / "bundles" / f"{cache_key(str(checkpoints['tied']))}-int8"
    assert load_bundle(cached).manifest.recipe == "int8"
    assert [p.name for p in cached.parent.iterdir()] == [cached.name]  # the fp32 step is gone

    # A bundle cached by an earlier version, whose int8 was dynamic MatMulInteger: built again
    # (it would run, but not batch-invariant), with a line that says why.
    manifest = json.loads((cached / "manifest.json").read_text())
    manifest["quantization"].update(int8_op="MatMulInteger", int8_block_size=None, reduce_range=True)
    (cached / "manifest.json").write_text(json.dumps(manifest))
    again = run_cli(*args, env=offline_env(tmp_path))
    assert again.returncode == 0, again.stderr
    assert (
        "earlier int8 recipe (int8_block_size None -> 128, int8_op MatMulInteger -> MatMulNBits"
        in again.stderr
    )
    assert load_bundle(cached).manifest.quantization["int8_op"] == "MatMulNBits"
    assert again.stdout == result.stdout
    result = run_cli("transcribe", clip, "--recipe", "int8")
    assert result.returncode == 2 and "--recipe goes with --model" in result.stderr


def test_model_option_offline_hub_id_is_a_clear_error(tmp_path):
    result = run_cli("transcribe", demo_examples()[0]["audio"], "--model", "Qwen/Qwen3-ASR-0.6B",
                     env=offline_env(tmp_path))  # fmt: skip
    assert result.returncode == 2
    assert "Qwen/Qwen3-ASR-0.6B" in result.stderr and "cannot fetch from the hub" in result.stderr
    assert "Traceback" not in result.stderr
    bundles = tmp_path / "cache" / "bundles"
    assert not bundles.exists() or not any(bundles.iterdir())  # nothing half-written


def test_model_option_without_the_export_extra_is_a_one_line_error(checkpoints, tmp_path, monkeypatch):
    import sys

    from qwen_asr_edge.models import cached_bundle
    from qwen_asr_edge.runtime.errors import MissingDependencyError

    checkpoint = str(checkpoints["tied"])  # written now, while torch is still importable
    monkeypatch.setenv("QWEN_ASR_EDGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    monkeypatch.delitem(sys.modules, "qwen_asr_edge.export.write", raising=False)
    with pytest.raises(MissingDependencyError) as e:
        cached_bundle(checkpoint, "int8")
    message = str(e.value)
    assert "\n" not in message and "torch is missing" in message
    assert message.endswith("pip install -e '.[export]' in a qwen-asr-edge checkout")
    bundles = tmp_path / "cache" / "bundles"
    assert not bundles.exists() or not any(bundles.iterdir())


def test_bundle_and_model_exclude_each_other(tmp_path):
    result = run_cli("transcribe", "x.wav", "--bundle", tmp_path, "--model", "Qwen/Qwen3-ASR-0.6B")
    assert result.returncode == 2 and "not allowed with" in result.stderr


def test_cache_keys():
    assert cache_key("Qwen/Qwen3-ASR-0.6B") == "Qwen--Qwen3-ASR-0.6B"
    a, b = cache_key("/tmp/x/model"), cache_key("/tmp/y/model")
    assert a.startswith("model-") and a != b


@pytest.mark.parametrize(("sentence", "language"), [("Please read me the news from today.", "English"),
                                                    ("Wo ist der nächste Bahnhof?", "German"),
                                                    ("-v --help, said a user", "en")])  # fmt: skip
def test_demo_script_speaks_and_transcribes_a_typed_sentence(sentence, language):
    """scripts/demo.sh, past its set-up: the examples, then a sentence given on the command line,
    spoken by espeak-ng in a held-out voice and transcribed by the demo model."""
    import shutil
    import subprocess
    import sys

    require(shutil.which("espeak-ng") is not None, "espeak-ng")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DEMO_SETUP": "0", "DEMO_VENV": str(Path(sys.executable).parent.parent)}
    command = ["bash", str(root / "scripts" / "demo.sh"), sentence, language]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for example in demo_examples():
        assert example["text"] in out
    voice = "de+f3" if language == "German" else "en-gb-scotland+f3"  # a leading "-" is text, not an option
    _, heard = out.split(f"--- espeak-ng ({voice}) says: {sentence}\n--- the demo model hears:\n")
    assert heard.strip() and "\n" not in heard.strip()  # one line of text


def test_demo_script_refuses_a_language_it_does_not_know_before_any_work():
    import subprocess

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DEMO_SETUP": "0", "DEMO_VENV": "/nonexistent"}
    command = ["bash", str(root / "scripts" / "demo.sh"), "Bonjour.", "French"]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 2 and result.stdout == ""
    assert (
        result.stderr
        == "demo.sh: the language is English or German, not 'French' (the demo model knows those two)\n"
    )
