"""Repetition guard: stop greedy decoding as soon as the output's last tokens are a loop.

A model that falls into a loop ("the the the ...", one phrase over and over) decodes it until its
token cap: hundreds of decode steps, and live, a loop on the user's screen. The official package
only repairs the text afterwards (``detect_and_fix_repetitions``, parsing.fix_repetitions: a
pattern of at most 20 characters repeated 20 times or more becomes one copy). The guard finds the
loop while decoding, on the token ids, and keeps what that repair keeps: the text before the loop
and one copy of its unit, from where the loop began (the earliest start, as the repair scans left
to right), never half a unit. (The repair works on characters, so of a run of one character,
"哈哈哈哈" tokens or "!!!!", it keeps one character where the guard keeps one token.)

The rule: the tail is a loop when a unit of ``p`` tokens (1 <= p <= ``max_unit``) repeats at
least ``max(min_repeats, ceil(min_tokens / p))`` times in a row; with the defaults (32, 5, 80):
80 times for one token, 40 for two, 20 for four, 10 for eight, 5 for 16 to 32 (up to 160
tokens). Why so strict, when a loop costs a step per token: stopping a loop after 80 tokens
rather than at a 30 s chunk's cap of 485 saves most of the steps already, and what is at stake on
the other side is speech, which does repeat. With the Qwen3 tokenizer: " ha" x 10 laughter is
10 tokens of one unit, "哈哈哈哈" is one token, "1" and twelve zeros are 13, "no, no, no" and
"0 0 0" are units of 2, Ballmer's "developers, developers, ..." (14 times) is a unit of 2
repeated 14 times, a chant of "U-S-A!" a unit of 4. None of these reach the rule; a stadium
chanting one 4-token unit 20 times would, and so would the official repair (7 characters, 20
times). For units of up to four tokens (which mostly spell at most 20 characters) the rule asks
at least as many repeats as the official repair does (one token: 80, two: 40, four: 20), so
where both apply, the guard only stops decoding whose loop the repair would have collapsed
anyway; what it loses is text after the loop, where a model would have left the loop by itself.
Longer units (sentences, which the official repair never touches: they stay repeated up to the
cap) need 5 verbatim repeats in a row; speech repeats a sentence two or three times, a looping
model until its cap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple


class Loop(NamedTuple):
    """A loop at the end of a token list.

    Attributes:
        start: Index of its first token: the earliest from which the list is periodic to its end.
        unit: Its period in tokens (the shortest that passed the guard's threshold).
        repeats: Whole units from ``start`` to the end.
    """

    start: int
    unit: int
    repeats: int

    @property
    def keep(self) -> int:
        """How many tokens of the list to keep: up to the end of the loop's first unit (the
        official repair's one copy; never half a unit)."""
        return self.start + self.unit


@dataclass(frozen=True)
class RepetitionGuard:
    """When the tail of a token list is a loop (see the module docstring for the rule and why).

    Attributes:
        max_unit: The longest unit looked for, in tokens.
        min_repeats: Repeats in a row a unit needs at least, however long it is.
        min_tokens: Tokens the repeats must span at least (so short units need more repeats).

    Raises:
        ValueError: ``max_unit`` or ``min_tokens`` below 1, or ``min_repeats`` below 2.
    """

    max_unit: int = 32
    min_repeats: int = 5
    min_tokens: int = 80

    def __post_init__(self):
        if self.max_unit < 1 or self.min_tokens < 1 or self.min_repeats < 2:
            raise ValueError(
                "repetition guard needs max_unit >= 1, min_repeats >= 2 and min_tokens >= 1; got "
                f"{self.max_unit}, {self.min_repeats}, {self.min_tokens}"
            )

    def repeats_needed(self, unit: int) -> int:
        """Repeats in a row that make a unit of ``unit`` tokens a loop."""
        return max(self.min_repeats, math.ceil(self.min_tokens / unit))

    @cached_property
    def _spans(self) -> tuple[tuple[int, int], ...]:
        """(unit, tokens its loop spans) for every unit length, once: ``find`` runs every step."""
        return tuple((unit, unit * self.repeats_needed(unit)) for unit in range(1, self.max_unit + 1))

    def find(self, tokens: Sequence[int], new_from: int = 0) -> Loop | None:
        """The loop that the tail of ``tokens`` is, or None.

        Checks only the tail: per unit length ``p``, comparisons back from the last token until one
        differs from the token ``p`` before it (on ordinary text, the first), so at most
        ``max_unit * repeats_needed`` per call and no allocation; called after every decoded
        token, it finds a loop at the first token that completes its threshold.

        Args:
            tokens: Token ids (a list, or any sequence that indexes in O(1)).
            new_from: Tokens before this index are history (text already given: a streaming
                prefix). A loop may begin in it, but only a tail that reaches past it counts: a
                list of history alone is no loop.

        Returns:
            The Loop with the shortest unit whose repeats pass the threshold (the earliest
            start for that unit), or None.
        """
        n = len(tokens)
        if n <= new_from:
            return None
        for unit, span in self._spans:
            if span > n:
                continue  # a longer unit may still fit: spans are not monotonic in the unit
            i, bound = n - 1, n - span + unit  # tokens[bound:] must each equal the one `unit` before
            while i >= bound and tokens[i] == tokens[i - unit]:
                i -= 1
            if i >= bound:
                continue
            while i >= unit and tokens[i] == tokens[i - unit]:  # back to where the loop begins
                i -= 1
            start = i - unit + 1
            return Loop(start, unit, (n - start) // unit)
        return None


DEFAULT_GUARD = RepetitionGuard()
"""The guard transcription uses unless told otherwise (``TranscriptionOptions.repetition_guard``)."""
