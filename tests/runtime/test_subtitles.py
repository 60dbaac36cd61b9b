"""Subtitle cues and the srt / vtt / tsv writers, read back with real subtitle parsers."""

from __future__ import annotations

import itertools

import srt
import webvtt

from qwen_asr_edge.runtime.results import Segment, Transcript, Word
from qwen_asr_edge.runtime.subtitles import cues, timestamp
from qwen_asr_edge.runtime.writers import get_writer


def transcript(words: list[Word], text: str = "x") -> Transcript:
    return Transcript(text, "English", 10.0, [Segment(0.0, 10.0, text, "English", [], words)])


def test_cues_break_at_length_pause_and_duration():
    words = [
        Word(w, i * 0.5, i * 0.5 + 0.4) for i, w in enumerate(["one", "two", "three", "four", "five", "six"])
    ]
    words.append(Word("later", 6.0, 6.4))  # a pause of 3 s
    got = cues(transcript(words), max_chars=14)
    assert [c.text for c in got] == ["one two three", "four five six", "later"]
    assert (got[0].start, got[0].end) == (0.0, 1.4)
    long = [Word(f"w{i}", i * 1.0, i * 1.0 + 0.9) for i in range(8)]
    assert all(c.end - c.start <= 5.0 for c in cues(transcript(long), max_chars=1000))


def test_cjk_units_join_without_spaces():
    words = [
        Word(w, i * 0.3, i * 0.3 + 0.2)
        for i, w in enumerate(["我", "用", "iPhone", "拍", "照", "very", "good"])
    ]
    assert cues(transcript(words))[0].text == "我用iPhone拍照very good"


def test_cue_texts_keep_the_punctuation_case_and_spacing_of_the_segment():
    """The aligner's units have no punctuation; cues used to be its units joined with spaces."""
    text = "¿Qué tal? Muy bien, gracias. Hasta mañana."
    units = ["Qué", "tal", "Muy", "bien", "gracias", "Hasta", "mañana"]
    words = [Word(w, i * 0.5, i * 0.5 + 0.4) for i, w in enumerate(units)]
    got = cues(transcript(words, text), max_chars=20)
    assert [c.text for c in got] == ["¿Qué tal? Muy bien,", "gracias. Hasta", "mañana."]
    assert " ".join(c.text for c in got) == text
    mixed = "我用iPhone拍照，very good。"
    units = ["我", "用", "iPhone", "拍", "照", "very", "good"]
    words = [Word(w, i * 0.3, i * 0.3 + 0.2) for i, w in enumerate(units)]
    assert [c.text for c in cues(transcript(words, mixed))] == [mixed]


def test_words_that_are_not_the_segments_text_join_as_their_language_writes():
    kana = [Word(w, i * 0.3, i * 0.3 + 0.2) for i, w in enumerate(["今日", "は", "いい", "天気", "です"])]
    assert cues(transcript(kana, "x"))[0].text == "今日はいい天気です"  # kana used to get spaces


def test_cues_never_overlap_or_vanish():
    words = [Word("a", 1.0, 1.0), Word("b", 0.5, 0.9)]  # zero length, then going back
    got = cues(transcript(words), max_chars=1)
    assert all(c.end > c.start for c in got)
    assert all(a.end <= b.start for a, b in itertools.pairwise(got))


def test_segments_without_words_are_cues():
    t = Transcript(
        "ab", "English", 4.0, [Segment(0.0, 2.0, " a ", "English"), Segment(2.0, 4.0, "", "English")]
    )
    assert [(c.start, c.end, c.text) for c in cues(t)] == [(0.0, 2.0, "a")]


def test_cue_text_is_one_line_whatever_the_model_wrote(tmp_path):
    """A blank line in a segment's text ended its srt cue early, and the rest broke the file."""
    text = "first part\n\nsecond  part"
    with_words = transcript([Word(w, i * 0.5, i * 0.5 + 0.4) for i, w in enumerate(text.split())], text)
    without = Transcript(text, "English", 2.0, [Segment(0.0, 2.0, text, "English")])
    for t in (with_words, without):
        assert [c.text for c in cues(t)] == ["first part second part"]
        parsed = list(srt.parse(get_writer("srt").format(t)))
        assert [c.content for c in parsed] == ["first part second part"]


def test_timestamp_format():
    assert timestamp(3725.0456, ",") == "01:02:05,046"
    assert timestamp(0.0, ".") == "00:00:00.000"


def test_writers_parse_back(tmp_path):
    words = [
        Word(w, i * 0.7, i * 0.7 + 0.5)
        for i, w in enumerate(["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog"])
    ]
    t = transcript(words, "The quick brown fox jumps over the lazy dog.")
    parsed = list(srt.parse(get_writer("srt").write(t, tmp_path, "a").read_text(encoding="utf-8")))
    assert " ".join(c.content for c in parsed) == "The quick brown fox jumps over the lazy dog."
    assert all(a.end <= b.start for a, b in itertools.pairwise(parsed))
    vtt = webvtt.read(str(get_writer("vtt").write(t, tmp_path, "a")))
    assert [c.text for c in vtt] == [c.content for c in parsed]
    assert vtt[0].start == "00:00:00.000"
    tsv = get_writer("tsv").format(t).splitlines()
    assert tsv[0] == "start\tend\ttext" and tsv[1].split("\t")[:2] == [
        "0",
        str(round(parsed[0].end.total_seconds() * 1000)),
    ]
