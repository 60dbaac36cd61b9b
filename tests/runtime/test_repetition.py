"""The repetition guard: loops found at the first token that completes them, speech-like repeats
left alone, history seen, the tail only read; in decoding, a looping row stopped early with the text
the official repair would give, and the old tokens with the guard off."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from qwen_asr_edge.runtime.repetition import DEFAULT_GUARD, Loop, RepetitionGuard

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
