"""What a chunk's output becomes: no model control markup in text, json or subtitles, an empty text
that says so when the model wrote no transcript, and a token cap that fits short clips and says
when it was reached. (Parity with the official parser on well-formed output: test_parsing.py.)"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import soundfile as sf
from hypothesis import example, given, settings
from hypothesis import strategies as st

from qwen_asr_edge.runtime import Transcriber, TranscriptionOptions, demo_bundle
from qwen_asr_edge.runtime.chunking import Chunk
from qwen_asr_edge.runtime.decoding import Generation
from qwen_asr_edge.runtime.parsing import parse_transcript
from qwen_asr_edge.runtime.results import Transcript
from qwen_asr_edge.runtime.transcriber import _Item, report_capped, report_unwritten
from qwen_asr_edge.runtime.writers import get_writer
from tests.support import run_cli as cli

MARKUP = re.compile(r"<asr_text>|<\|[^|]*\|>|<non_speech>|<think>|language (English|German|None)<", re.I)

# Outputs the demo model wrote on noisy mixes of its examples (forced language or not).
SEEN = [
    ("language English<asr_text>Remindplevisranguage English<asr_text>It costs 27 euros.", None),
    ("On Thursday myieuestsmanguuuuuuuage Englismanltoman<asr_text>Rufe do0.", "English"),
    ("<asr_text><asr_text><asr_text><asr_text>32, please.", "English"),
    ("Äpielevisring English<asr_text>It costs 27 euros.", "German"),
    ("language English<asr_text>Tomorrow I will go shopping.", "English"),
]


@pytest.mark.parametrize("raw,forced", SEEN)
def test_outputs_seen_on_noisy_audio_leave_no_markup(raw, forced):
    parsed = parse_transcript(raw, forced)
    assert not MARKUP.search(parsed.text) and parsed.text and parsed.reached_text
    assert parsed.text.endswith(raw.rsplit(">", 1)[-1])  # the text after the last tag is kept whole


@pytest.mark.parametrize(
    "raw,forced,truncated,want",
    [
        ("language English<asr_text>Hello.language English<asr_text>World.", None, False, "Hello. World."),
        ("language Chinese<asr_text>你好。language Chinese<asr_text>世界", None, False, "你好。世界"),
        ("language German<asr_text>Hallo.language None<asr_text>", None, False, "Hallo."),
        ("language English<asr_text>Hi <|fim_prefix|>there<non_speech>.", None, False, "Hi there."),
        ("language English<asr_text>Book a table.language Eng", None, True, "Book a table."),
        ("language English<asr_text>Book a table.langu", None, True, "Book a table."),
        ("Book a table.language", "English", True, "Book a table."),
        ("language English<asr_text>I love this language", None, False, "I love this language"),
        ("language English<asr_text>I love this language", None, True, "I love this language"),
        ("language None<asr_text>", "German", False, ""),
    ],
)
def test_prefixes_repeated_cut_or_forced_and_control_tokens_are_removed(raw, forced, truncated, want):
    assert parse_transcript(raw, forced, truncated=truncated).text == want


NO_TAG = ["l.", "langu13.", "languamildrildroom.", "m Oktober Oktober1.", "language Eng", ""]


@pytest.mark.parametrize("raw", NO_TAG)
def test_output_that_never_reaches_the_text_tag_gives_empty_text_and_says_so(raw):
    """Silence gave "l." (the prefix begun), noise whole invented lines, all taken as text."""
    parsed = parse_transcript(raw)
    assert (parsed.language, parsed.text, parsed.reached_text) == ("", "", False)
    assert parse_transcript(raw, "English").reached_text  # forced: the prompt holds the prefix


pieces = st.sampled_from(
    [
        "language English",
        "language None",
        "LANGUAGE chinese\n",
        "<asr_text>",
        "<|im_end|>",
        "<|fim_middle|>",
        "<non_speech>",
        "language",
        "lang",
        "l",
        " ",
        "\n",
        "Hello.",
        "你好",
        "x" * 25,
    ]
)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.one_of(pieces, st.text(max_size=6)), max_size=20).map("".join),
    st.sampled_from([None, "English", "Chinese"]),
    st.booleans(),
)
@example("language English<", "English", False)  # found by this test: a tag begun, not finished
@example("Hello. language English<asr_", None, False)
@example("language English<0", "English", False)
def test_no_control_markup_survives_any_output(raw, forced, truncated):
    parsed = parse_transcript(raw, forced, truncated=truncated)
    assert "<asr_text>" not in parsed.text
    assert not re.search(r"<\|[^<>|\s]{1,64}\|>|<non_speech>", parsed.text)
    assert not re.search(r"language\s*(English|None|chinese)?\s*<", parsed.text, re.I)
    assert parsed.text == parsed.text.strip()
    if not forced and "<asr_text>" not in raw:
        assert parsed.text == "" and not parsed.reached_text


# -- in the transcriber: finish_reason, the warning, json and subtitles -------------------------


@pytest.fixture(scope="module")
def demo() -> Transcriber:
    return Transcriber(demo_bundle(), providers="cpu")


def segment_of(demo: Transcriber, raw: str, language: str | None, stop: bool = True):
    """The Segment the transcriber makes of a chunk whose decoder wrote ``raw`` and then a stop id, or
    (``stop`` False) reached its cap."""
    tokens = demo.tokenizer.encode(raw) + ([demo.bundle.manifest.tokens.im_end] if stop else [])
    item = _Item(0, Chunk(np.zeros(16000, np.float32), 3.0, 1.0), "", language, "talk.wav")
    generation = Generation([tokens], 10, None, [None], finish_reasons=["stop" if stop else "length"])
    return demo._segment(item, generation, 0, TranscriptionOptions())


def test_markup_reaches_neither_text_nor_json_nor_subtitles(demo, tmp_path):
    raw = "language English<asr_text>Hello there.<|fim_prefix|>language English<asr_text>General Kenobi."
    forced = segment_of(demo, "language German<asr_text>Guten Tag.", "German")
    segments = [segment_of(demo, raw, None), forced]
    assert [s.text for s in segments] == ["Hello there. General Kenobi.", "Guten Tag."]
    transcript = Transcript.of(segments, 5.0, source="talk.wav")
    for fmt in ("txt", "json", "srt", "vtt", "tsv"):
        written = get_writer(fmt).format(transcript)
        assert not MARKUP.search(written) and "fim_prefix" not in written, fmt


def test_a_chunk_at_its_cap_says_so_in_the_segment_json_and_a_warning(demo, caplog):
    raw = "language English<asr_text>Book a table for"
    cap = len(demo.tokenizer.encode(raw))  # the decoder stopped at the cap, mid-sentence
    segment = segment_of(demo, raw, None, stop=False)
    assert (segment.finish_reason, segment.reached_text) == ("length", True)
    report_capped("talk.wav", [segment], 1, TranscriptionOptions())
    assert f"talk.wav: 3.00-4.00 s reached its cap of {cap} tokens" in caplog.text
    assert "--max-new-tokens" in caplog.text
    caplog.clear()  # many capped chunks of one recording: one line, not one per chunk
    report_capped("talk.wav", [segment] * 3, 40, TranscriptionOptions())
    (line,) = caplog.text.splitlines()
    assert (
        f"talk.wav: 3 of 40 chunks reached their token cap (the first at 3.00-4.00 s, {cap} tokens)" in line
    )
    doc = Transcript.of([segment], 4.0).to_dict()["segments"][0]
    assert (doc["finish_reason"], doc["reached_text"]) == ("length", True)
    caplog.clear()
    done = segment_of(demo, "language English<asr_text>Book a table.", None)
    assert done.finish_reason == "stop" and not caplog.text
    silent = segment_of(demo, "l.", None)
    assert (silent.text, silent.reached_text) == ("", False)
    assert Transcript.of([silent], 4.0).to_dict()["segments"][0]["reached_text"] is False


def test_chunks_with_no_transcript_say_so_in_one_warning(demo, caplog):
    """An empty text with exit 0 left a new user guessing (the demo model on 20-40 s chunks of
    speech writes no <asr_text>): one warning per recording says where, and for long chunks that
    shorter ones may help."""
    import dataclasses

    silent = segment_of(demo, "l.", None)  # 3.00-4.00 s
    report_unwritten("talk.wav", [silent], 1)
    said = "talk.wav: for 3.00-4.00 s the model wrote no transcript (no <asr_text>: silence or noise"
    assert said in caplog.text
    assert "--max-chunk-seconds" not in caplog.text  # a short chunk: not the length
    caplog.clear()
    long = dataclasses.replace(silent, start=0.0, end=25.0)
    report_unwritten("talk.wav", [long, silent], 3)
    (line,) = caplog.text.splitlines()
    assert "talk.wav: for 2 of 3 chunks (the first at 0.00-25.00 s) the model wrote no transcript" in line
    assert "shorter chunks (--max-chunk-seconds" in line
    caplog.clear()
    report_unwritten("talk.wav", [], 3)
    assert not caplog.text


def test_token_cap_is_the_prefix_plus_the_slope():
    options = TranscriptionOptions()
    assert options.token_cap(0.02, prefix_tokens=3) == 3 + 1 + 1
    assert options.token_cap(30.0, prefix_tokens=3) == 3 + 480 + 1  # dense speech: ~8 tokens/s
    assert TranscriptionOptions(max_new_tokens=7).token_cap(30.0, prefix_tokens=3) == 7


def test_the_prefix_allowance_is_measured_with_the_bundles_tokens(demo):
    longest = max(len(demo.tokenizer.encode(f"language {n}<asr_text>")) for n in [*demo.languages, "None"])
    assert demo.token_cap(0.0, TranscriptionOptions()) == longest + 1


def test_cli_silence_gives_empty_text_and_a_20_ms_clip_no_sentence(tmp_path):
    """10 s of silence gave "l."; 20 ms of speech a whole invented sentence, silently."""
    from qwen_asr_edge.runtime.audio import load_audio
    from qwen_asr_edge.runtime.demo import demo_examples

    sf.write(tmp_path / "silence.wav", np.zeros(160000, dtype=np.float32), 16000)
    sf.write(tmp_path / "blip.wav", load_audio(demo_examples()[0]["audio"])[8000:8320], 16000)
    result = cli("transcribe", tmp_path / "silence.wav", tmp_path / "blip.wav", "-f", "json")
    assert result.returncode == 0, result.stderr
    silence, blip = json.loads(result.stdout)
    assert silence["text"] == "" and silence["segments"][0]["reached_text"] is False
    assert f"{tmp_path / 'silence.wav'}: for 0.00-10.00 s the model wrote no transcript" in result.stderr
    assert blip["segments"][0]["finish_reason"] == "length" and len(blip["text"].split()) <= 3
    assert f"{tmp_path / 'blip.wav'}: 0.00-0.02 s reached its cap of" in result.stderr
    assert "--max-new-tokens" in result.stderr
