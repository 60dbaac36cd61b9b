"""Output parsing, repetition fix and long-audio chunking against the official functions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from qwen_asr_edge.runtime.chunking import split_at_quiet_points
from qwen_asr_edge.runtime.parsing import fix_repetitions, parse_output, parse_transcript, well_formed
from qwen_asr_edge.runtime.results import language_runs

utils = pytest.importorskip("qwen_asr.inference.utils")

pieces = st.sampled_from(
    [
        "a",
        "ab",
        "abc",
        "哈",
        "哈哈",
        " ",
        "\n",
        "language English",
        "<asr_text>",
        "language None",
        "LANGUAGE chinese\n",
        "x" * 25,
        "na" * 21,
        "你好" * 20,
    ]
)
texts = st.lists(st.one_of(pieces, st.text(max_size=8)), max_size=30).map("".join)


@settings(max_examples=400, deadline=None)
@given(texts)
def test_repetition_fix_matches_official(text):
    assert fix_repetitions(text) == utils.detect_and_fix_repetitions(text)


@settings(max_examples=400, deadline=None)
@given(texts, st.sampled_from([None, "English", "Chinese"]))
def test_parse_matches_official(text, forced):
    assert parse_output(text, forced) == utils.parse_asr_output(text, user_language=forced)


@settings(max_examples=400, deadline=None)
@given(texts, st.sampled_from([None, "English", "Chinese"]), st.booleans())
@example("language English<", "English", False)  # a half tag: not well formed, so ours drops it
def test_parse_transcript_is_the_official_parse_wherever_the_output_is_well_formed(text, forced, truncated):
    ours = parse_transcript(text, forced, truncated=truncated)
    official = utils.parse_asr_output(text, user_language=forced)
    if well_formed(text, forced, truncated=truncated):
        assert (ours.language, ours.text) == official
    elif forced or "<asr_text>" in text:  # only the text differs: the official one keeps markup
        assert ours.language == official[0]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["English", "chinese", "GERMAN", "None", "Cantonese"]),
    st.lists(st.sampled_from(["Hello", " ", ",", ".", "你好", "language", "85", "\n", "ß"]), max_size=12).map(
        "".join
    ),
    st.sampled_from(["", "\n", "\n\n"]),
)
def test_well_formed_outputs_parse_as_the_official_parser_does(name, text, gap):
    raw = f"language {name}{gap}<asr_text>{text}"
    assert well_formed(raw)
    ours = parse_transcript(raw)
    assert (ours.language, ours.text, ours.reached_text) == (*utils.parse_asr_output(raw), True)
    assert well_formed(text, "English")
    assert parse_transcript(text, "English").text == utils.parse_asr_output(text, user_language="English")[1]


@pytest.mark.parametrize(
    "raw",
    [
        "language English<asr_text>Hello there.",
        "language None<asr_text>",
        "language none<asr_text>stray text",
        "plain text without tag",
        "language chinese\n\n<asr_text>你好",
        "\nlanguage  gERMAN \n<asr_text> Hallo ",
        "a\nLANGUAGE chinese\n<asr_text>",  # found by hypothesis: the language line need not come first
        "language English<asr_text>" + "ha" * 400 + " end",
    ],
)
def test_parse_examples(raw):
    assert parse_output(raw) == utils.parse_asr_output(raw)


def test_long_repetition_does_not_recurse():
    text = "".join(f"{i % 7}" * 25 + "ab" * 30 for i in range(2000))  # thousands of repeat runs
    assert fix_repetitions(text).startswith("0ab1ab")


@pytest.mark.parametrize("langs", [["Chinese", "English", "English"], ["", "English", "", "English"], []])
def test_merge_languages_matches_official(langs):
    assert ",".join(language_runs(langs)) == utils.merge_languages(langs)


@pytest.mark.parametrize(
    "seconds,max_seconds", [(10.0, 20.0), (65.3, 20.0), (41.0, 20.0), (40.2, 20.0), (301.0, 30.0)]
)
def test_quiet_point_cuts_are_the_official_ones_with_the_window_ending_at_the_limit(seconds, max_seconds):
    """Our window is the official +-5 s one moved back so that it ends at the limit: the official
    cutter at max_seconds - 2.5 with +-2.5 s. Cuts agree where our tail rule (no chunk under 1 s
    after the last cut) cannot apply: while at least the limit plus 1 s remains."""
    rng = np.random.default_rng(0)
    n = int(seconds * 16000)
    wav = (0.3 * rng.standard_normal(n) * (1 + np.sin(np.arange(n) / 3000.0))).astype(np.float32)
    ours = split_at_quiet_points(wav, 16000, max_seconds)
    theirs = utils.split_audio_into_chunks(wav, 16000, max_seconds - 2.5, search_expand_sec=2.5)
    free = [c for c in ours if n - round(c.offset * 16000) >= (max_seconds + 1.0) * 16000]
    assert free or len(ours) == 1
    for c, (w, offset) in zip(free, theirs, strict=False):
        np.testing.assert_array_equal(c.wav, w)
        assert c.offset == pytest.approx(offset, abs=1e-9)
    assert sum(round(c.duration * 16000) for c in ours) == n
