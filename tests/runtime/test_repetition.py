"""The repetition guard: loops found at the first token that completes them, speech-like repeats
left alone, history seen, the tail only read; in decoding, a looping row stopped early with the text
the official repair would give, and the old tokens with the guard off."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from qwen_asr_edge.runtime import RepetitionGuard, Transcriber, TranscriptionOptions, demo_bundle
from qwen_asr_edge.runtime.audio import load_audio
from qwen_asr_edge.runtime.demo import demo_examples
from qwen_asr_edge.runtime.parsing import fix_repetitions, parse_output
from qwen_asr_edge.runtime.repetition import DEFAULT_GUARD, Loop
from qwen_asr_edge.runtime.transcriber import AudioEncoding
from tests.support import noise_clip
from tests.support import run_cli as cli

GUARD = RepetitionGuard()


def first_loop(guard: RepetitionGuard, tokens: list[int], new_from: int = 0) -> tuple[int, Loop] | None:
    """Feed ``tokens`` one at a time, as decoding does: (tokens seen, Loop) when the guard first
    fires, or None."""
    for n in range(new_from + 1, len(tokens) + 1):
        if (loop := guard.find(tokens[:n], new_from)) is not None:
            return n, loop
    return None


def test_thresholds_are_the_documented_ones():
    assert DEFAULT_GUARD == GUARD
    needed = {p: GUARD.repeats_needed(p) for p in (1, 2, 3, 4, 5, 8, 16, 32)}
    assert needed == {1: 80, 2: 40, 3: 27, 4: 20, 5: 16, 8: 10, 16: 5, 32: 5}


@pytest.mark.parametrize("unit", [1, 2, 3, 5, 7, 16, 31, 32])
def test_a_loop_is_found_at_the_token_that_completes_its_threshold(unit):
    prefix = list(range(1000, 1010))  # no repeats of its own
    tokens = prefix + list(range(1, unit + 1)) * 200
    n, loop = first_loop(GUARD, tokens)
    repeats = GUARD.repeats_needed(unit)
    assert n == len(prefix) + unit * repeats  # one token earlier it was not one
    assert loop == Loop(start=len(prefix), unit=unit, repeats=repeats)
    assert tokens[: loop.keep] == prefix + list(range(1, unit + 1))  # one whole copy


def test_units_longer_than_max_unit_are_not_looked_for():
    assert first_loop(GUARD, list(range(33)) * 20) is None
    assert first_loop(RepetitionGuard(max_unit=33), list(range(33)) * 20)[1].unit == 33


def test_the_shortest_unit_and_the_earliest_start_are_reported():
    # "a a a ..." is a loop of "a", not of "a a"; a loop entered mid-unit starts where it entered.
    assert first_loop(GUARD, [9] + [4] * 100)[1] == Loop(1, 1, 80)
    tokens = [9, 2, 3] + [1, 2, 3] * 40
    n, loop = first_loop(GUARD, tokens)
    assert (loop.start, loop.unit) == (1, 3) and tokens[: loop.keep] == [9, 2, 3, 1]
    assert n == 1 + 3 * 27


def test_a_loop_may_begin_in_the_history_but_must_reach_past_it():
    history = [9] + [5] * 50
    n, loop = first_loop(GUARD, history + [5] * 100, new_from=len(history))
    assert n == 81 and loop == Loop(1, 1, 80)  # 30 new tokens completed it
    assert loop.keep < len(history)  # its first unit is history: no new token is kept
    assert GUARD.find([5] * 100, new_from=100) is None  # history alone is no loop
    assert GUARD.find([5] * 100 + [5], new_from=100) == Loop(0, 1, 101)
    assert GUARD.find([5] * 100 + [6], new_from=100) is None  # a loop the new text leaves
    assert first_loop(GUARD, [5] * 50 + [6] + [5] * 60, new_from=51) is None  # not one run


class Counting(Sequence):
    """A token list that counts reads."""

    def __init__(self, items: list[int]):
        self.items, self.reads = items, 0

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):
        self.reads += 1
        return self.items[i]


@pytest.mark.parametrize("length", [1_000, 100_000])
def test_only_the_tail_is_read(length):
    """Called after every token: on ordinary text two reads per unit length, whatever the length;
    in a loop just short of its threshold, at most its span per unit length."""
    rng = np.random.default_rng(0)
    text = Counting(rng.integers(0, 150_000, length).tolist())
    assert GUARD.find(text) is None and text.reads <= 4 * GUARD.max_unit
    almost = Counting(text.items + [7] * 79)
    assert GUARD.find(almost, new_from=length) is None
    assert almost.reads <= 2 * sum(p * GUARD.repeats_needed(p) for p in range(1, GUARD.max_unit + 1))


def test_bad_thresholds_are_refused():
    for bad in ({"max_unit": 0}, {"min_repeats": 1}, {"min_tokens": 0}):
        with pytest.raises(ValueError, match="repetition guard"):
            RepetitionGuard(**bad)


# -- with the Qwen3 tokenizer and a tiny model that loops ------------------------------------------


@pytest.fixture(scope="module")
def tiny(bundles) -> Transcriber:
    return Transcriber(bundles["tied-full"], providers="cpu")


# What speech repeats, about as often as a 30 s chunk could hold it, with the real Qwen3 tokenizer
# (the tiny bundles have it): laughter, digits, "no, no, no", Ballmer's "developers" (14 times), a
# stadium chant, a song's "la la la", a refrain.
SPEECH = [
    (" ha", 30),
    ("哈哈哈哈", 15),
    ("0", 25),
    (" 0", 25),
    (" no,", 15),
    (" developers,", 14),
    (" U-S-A!", 16),
    (" Go!", 18),
    (" la", 40),
    (" Thank you.", 10),
    (" Around the world, around the world,", 4),
    (" I will always love you, my dear, whatever the weather says.", 4),
]


@pytest.mark.parametrize("text,times", SPEECH)
def test_speech_repeats_are_no_loop_and_short_units_loop_only_where_the_official_repair_acts(
    tiny, text, times
):
    tokens = tiny.tokenizer.encode("Hello" + text * times)
    assert first_loop(GUARD, tokens) is None
    # Said on and on: the guard stops it, and keeps what the official repair keeps of the same text.
    tokens = tiny.tokenizer.encode("Hello" + text * 200)
    n, loop = first_loop(GUARD, tokens)
    kept = tiny.tokenizer.decode(tokens[: loop.keep])
    assert kept == "Hello" + text
    if loop.unit <= 4 and len(text) <= 20:  # a unit the official repair handles: it acts already
        # (on characters: a run of one character it keeps once, where the guard never splits a token)
        repaired = "Hello" + text[0] if len(set(text)) == 1 else kept
        assert fix_repetitions(tiny.tokenizer.decode(tokens[:n])) == repaired


# A cap past where the guard finds the loop below (at the 240th token, begun at the 161st).
CAP = 260


def looping_clip(tiny: Transcriber) -> tuple[np.ndarray, AudioEncoding, np.ndarray]:
    """A clip on which the tiny model, told the language, loops on one token up to any cap (found
    by search): the clip, its encoding and its prompt."""
    wav = noise_clip(2.0, seed=1)
    encoding = tiny.encode([wav])
    return wav, encoding, tiny.prompt_ids(int(encoding.lengths[0]), "", "English")


def test_a_looping_row_stops_early_with_the_text_of_the_official_repair(tiny):
    wav, encoding, prompt = looping_clip(tiny)
    off = tiny.decode([prompt], encoding, [CAP])
    assert off.finish_reasons == ["length"]
    n, loop = first_loop(GUARD, off.tokens[0])
    on = tiny.decode([prompt], encoding, [CAP], repetition_guard=GUARD)
    assert on.finish_reasons == ["repetition"]
    assert on.tokens[0] == off.tokens[0][: loop.keep]
    assert len(on.step_seconds) == n - 1 == 239 < len(off.step_seconds)  # stopped where it was found
    raw_on, raw_off = tiny.tokenizer.decode(on.tokens[0]), tiny.tokenizer.decode(off.tokens[0])
    assert parse_output(raw_on, "English") == parse_output(raw_off, "English")  # official parse + repair

    # In a batch the guard stops that row only; log-probabilities are cut with the tokens.
    other = tiny.encode([noise_clip(8.0, seed=1)])
    other_prompt = tiny.prompt_ids(int(other.lengths[0]), "", "German")
    alone = tiny.decode([other_prompt], other, [CAP], repetition_guard=GUARD)
    assert alone.finish_reasons == ["length"]  # this one does not loop
    both = tiny.encode([wav, noise_clip(8.0, seed=1)])
    batch = tiny.decode([prompt, other_prompt], both, [CAP, CAP], log_probs=True, repetition_guard=GUARD)
    assert batch.tokens == [on.tokens[0], alone.tokens[0]]
    assert batch.finish_reasons == ["repetition", "length"]
    assert [len(x) for x in batch.log_probs] == [len(t) for t in batch.tokens]


def test_history_lets_a_loop_begun_before_the_prompt_end_stop_sooner(tiny):
    """Streaming puts text already said into the prompt: a loop that began in it is stopped when the
    new tokens complete its threshold, keeping none of them (its first copy was said already)."""
    _, encoding, prompt = looping_clip(tiny)
    whole = tiny.decode([prompt], encoding, [280]).tokens[0]
    n, loop = first_loop(GUARD, whole)
    said = whole[: loop.start + 40]  # 40 repeats said, 40 to come
    continued = np.concatenate([prompt, said])
    assert tiny.decode([continued], encoding, [80]).tokens[0] == whole[len(said) : len(said) + 80]
    seen = tiny.decode([continued], encoding, [80], repetition_guard=GUARD, history=[said])
    assert (seen.tokens, seen.finish_reasons) == ([[]], ["repetition"])
    assert len(seen.step_seconds) == n - len(said) - 1 == 39
    unseen = tiny.decode([continued], encoding, [80], repetition_guard=GUARD)  # 80 new repeats needed
    assert unseen.tokens == [whole[len(said) : len(said) + 1]] and unseen.finish_reasons == ["repetition"]
    with pytest.raises(ValueError, match="history has 2 rows for 1 prompts"):
        tiny.decode([continued], encoding, [80], repetition_guard=GUARD, history=[said, said])


def test_transcription_guards_by_default_says_so_and_off_gives_the_old_tokens(tiny, caplog):
    wav, encoding, prompt = looping_clip(tiny)
    options = TranscriptionOptions(max_new_tokens=CAP)
    got = tiny.transcribe(wav, language="English", options=options)
    (segment,) = got.segments
    assert segment.finish_reason == "repetition" and len(segment.tokens) < CAP
    assert got.to_dict()["segments"][0]["finish_reason"] == "repetition"
    (line,) = caplog.text.splitlines()
    assert "0.00-2.00 s the model repeated itself" in line and "--no-repetition-guard" in line
    caplog.clear()
    off = tiny.transcribe(wav, language="English", options=replace(options, repetition_guard=None))
    assert off.segments[0].tokens == tiny.decode([prompt], encoding, [CAP]).tokens[0]
    assert off.segments[0].finish_reason == "length" and "reached its cap" in caplog.text
    assert off.text == got.text  # the official repair collapses the loop the guard stopped
    equal_work = tiny.transcribe(wav, language="English", options=replace(options, ignore_stop=True))
    assert equal_work.segments[0].tokens == off.segments[0].tokens  # benchmarks: no row ends early
    with pytest.raises(ValueError, match="RepetitionGuard or None"):
        TranscriptionOptions(repetition_guard=False)


def test_cli_guards_by_default_and_no_repetition_guard_turns_it_off(tiny, bundles, tmp_path):
    wav, *_ = looping_clip(tiny)
    sf.write(tmp_path / "loop.wav", wav, 16000, subtype="FLOAT")
    args = ["transcribe", tmp_path / "loop.wav", "--bundle", bundles["tied-full"], "--language", "English"]
    args += ["--max-new-tokens", CAP, "-f", "json"]
    guarded, off = cli(*args), cli(*args, "--no-repetition-guard")
    assert guarded.returncode == off.returncode == 0, guarded.stderr + off.stderr
    assert json.loads(guarded.stdout)[0]["segments"][0]["finish_reason"] == "repetition"
    assert "the model repeated itself" in guarded.stderr
    assert json.loads(off.stdout)[0]["segments"][0]["finish_reason"] == "length"
    assert "reached its cap" in off.stderr and "repeated itself" not in off.stderr


def test_finish_reasons_name_the_stop_id_and_the_cap():
    demo = Transcriber(demo_bundle(), providers="cpu")
    wav = load_audio(demo_examples()[0]["audio"])
    stopped = demo.transcribe(wav).segments[0]
    assert stopped.finish_reason == "stop" and stopped.tokens[-1] in demo.bundle.manifest.tokens.eos
    capped = demo.transcribe(wav, options=TranscriptionOptions(max_new_tokens=5)).segments[0]
    assert capped.finish_reason == "length" and len(capped.tokens) == 5
