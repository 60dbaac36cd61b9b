"""Aligner text handling against the official Qwen3ForceAlignProcessor: word units and time repair."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qwen_asr_edge.runtime.alignment import repair_timestamps, split_words
from qwen_asr_edge.runtime.errors import MissingDependencyError


@pytest.fixture(scope="module")
def official():
    pytest.importorskip("qwen_asr")
    from qwen_asr.inference.qwen3_forced_aligner import Qwen3ForceAlignProcessor

    return Qwen3ForceAlignProcessor()


EDGE_CASES = [
    [80, 4000, 160, 240],  # the spec's example -> [80, 80, 160, 240]
    [400, 400, 400, 400],  # all equal
    [800, 640, 480, 320, 160],  # strictly decreasing
    [80, 160, 9999, 240, 320],  # one anomaly
    [80, 160, 9999, 9999, 240, 320],  # two
    [80, 160, 9000, 9100, 9200, 9300, 9400, 240, 320],  # five: interpolated
    [5000, 5000, 5000, 80, 160, 240, 320],  # a run at the start
    [80, 160, 240, 320, 0, 0, 0],  # a run at the end
    # The slot classes (x 80 ms) of the parity test's 2 s clip, ours then the official prompt's:
    # a run of four at the start takes its right neighbour (171.76 and 94.08 s).
    [332400] * 4 + [171760] * 32,
    [332400] * 4 + [94080] + [171760] * 31,
    [80],
    [],
]


@pytest.mark.parametrize("raw", EDGE_CASES)
def test_repair_matches_official_edge_cases(official, raw):
    want = official.fix_timestamp(np.array(raw)) if raw else []
    assert repair_timestamps(raw) == want


def test_repair_spec_example():
    assert repair_timestamps([80, 4000, 160, 240]) == [80, 80, 160, 240]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 60).map(lambda k: 80 * k), min_size=1, max_size=40))
def test_repair_matches_official_on_random_slot_times(official, raw):
    got = repair_timestamps(raw)
    assert got == official.fix_timestamp(np.array(raw))
    assert got == sorted(got)  # the point of it: times never go back


TEXTS = [
    "Hello, world! It's state-of-the-art.",
    "我们今天去北京，好吗？",
    "我用 iPhone 15 拍了张照片，效果 very good!",
    "  ...  ",
    "Ünïcödé façade — naïve café; 123 456",
    "𠀀𠀁 mixed with Latin",  # Extension B ideographs
]


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("language", ["English", "Chinese", "german", "Klingon"])
def test_units_match_official(official, text, language):
    assert split_words(text, language) == official.encode_timestamp(text, language)[0]


def test_units_examples():
    assert split_words("Hello, world! It's state-of-the-art.", "English") == [
        "Hello", "world", "It's", "stateoftheart",
    ]  # fmt: skip
    assert split_words("我用iPhone拍照", "Chinese") == ["我", "用", "iPhone", "拍", "照"]
    assert split_words("?! …", "English") == []


@pytest.mark.parametrize(
    "language,text",
    [
        ("Japanese", "今日は良い天気ですね。東京タワーに行きました！"),
        ("Korean", "안녕하세요 세계, 오늘은 날씨가 좋네요."),
    ],
)
def test_japanese_and_korean_units_match_official(official, language, text):
    assert split_words(text, language) == official.encode_timestamp(text, language)[0]


def test_korean_example_from_the_spec():
    assert split_words("안녕하세요 세계", "korean") == ["안녕", "하세요", "세계"]


@pytest.mark.parametrize("language,module,extra", [("Japanese", "nagisa", "ja"), ("Korean", "soynlp", "ko")])
def test_segmenter_missing_names_its_extra(monkeypatch, language, module, extra):
    from qwen_asr_edge.runtime import alignment

    alignment._korean_tokenizer.cache_clear()
    monkeypatch.setitem(sys.modules, module, None)  # import now raises ImportError
    monkeypatch.setitem(sys.modules, f"{module}.tokenizer", None)
    with pytest.raises(MissingDependencyError, match=rf"\[{extra}\]"):
        split_words("テスト 테스트", language)
    alignment._korean_tokenizer.cache_clear()


@pytest.mark.slow  # exports an aligner bundle
def test_align_refuses_text_that_is_not_utf8_in_one_line(bundles, tmp_path):
    """A transcript passed with a Latin-1 byte (argv's surrogate escapes), or piped in as Latin-1."""
    import subprocess
    import sys

    import soundfile as sf

    from tests.support import noise_clip, run_cli

    clip = tmp_path / "clip.wav"
    sf.write(clip, noise_clip(2.0), 16000)
    bundle = str(bundles["untied-full-aligner"])
    command = [sys.executable, "-m", "qwen_asr_edge", "align", str(clip)]
    as_argument = subprocess.run(
        [*command, b"caf\xe9", "--language", "English", "--bundle", bundle], capture_output=True, timeout=300
    )
    piped = subprocess.run(
        [*command, "-", "--language", "English", "--bundle", bundle],
        input=b"caf\xe9\n",
        capture_output=True,
        timeout=300,
    )
    for done in (
        as_argument,
        piped,
    ):  # stdin decodes strictly or with surrogates, by locale: one line both ways
        assert done.returncode == 2 and b"Traceback" not in done.stderr, done.stderr
        assert b"transcript" in done.stderr and b"is not valid UTF-8 text" in done.stderr
    assert run_cli("align", clip, "cafe", "--language", "English", "--bundle", bundle).returncode == 0
