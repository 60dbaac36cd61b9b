"""The public Python API as a faster-whisper user would use it: lazy segments, language
probabilities, token log-probabilities, ISO codes, and results that say how they were made."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from qwen_asr_edge.runtime import (
    InputError,
    Segment,
    Transcriber,
    Transcript,
    TranscriptionOptions,
    demo_bundle,
)
from qwen_asr_edge.runtime.demo import demo_examples
from tests.support import noise_clip


@pytest.fixture(scope="module")
def demo() -> Transcriber:
    return Transcriber(demo_bundle(), providers="cpu")


@pytest.fixture(scope="module")
def tiny(bundles) -> Transcriber:
    return Transcriber(bundles["tied-full"], providers="cpu")


def test_iter_segments_yields_what_transcribe_returns_in_time_order(tiny):
    wav = noise_clip(75.0, seed=3)
    options = TranscriptionOptions(max_new_tokens=4, max_chunk_seconds=20, batch_size=2)
    segments = tiny.iter_segments(wav, options=options)
    first = next(segments)  # the first batch only has been decoded
    assert isinstance(first, Segment) and first.start == 0.0
    rest = list(segments)
    assert [s.start for s in [first, *rest]] == sorted(s.start for s in [first, *rest])
    whole = tiny.transcribe(wav, options=options)
    assert [first, *rest] == whole.segments
    assert len(whole.segments) == 4 and whole.timings.prefill and len(whole.timings.prefill) == 2
    # One entry per batch however many batches (an identity-keyed dedupe once dropped reused ones).
    one_by_one = tiny.transcribe(wav, options=dataclasses.replace(options, batch_size=1))
    assert len(one_by_one.timings.prefill) == len(one_by_one.timings.encode) == 4
    assert one_by_one.segments == whole.segments


def test_iter_segments_checks_its_input_when_iterated(tiny, tmp_path):
    segments = tiny.iter_segments(str(tmp_path / "missing.wav"))
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        next(segments)


def test_language_probability_and_detect_language(demo):
    for example in demo_examples():
        result = demo.transcribe(example["audio"])
        assert result.language == example["language"]
        assert 0.5 < result.language_probability <= 1.0
        assert result.languages == [example["language"]]
        language, probability, probs = demo.detect_language(example["audio"])
        assert (language, probability) == (result.language, pytest.approx(result.language_probability))
        assert set(probs) == {*demo.languages, "None"} and sum(probs.values()) == pytest.approx(1.0)
        forced = demo.transcribe(example["audio"], language=example["language"])
        assert forced.language_probability == 1.0


def test_token_log_probs_are_the_log_softmax_of_the_logits(demo):
    """The decode loop's log-probabilities equal a log-softmax of teacher-forced logits."""
    wav = demo.load(demo_examples()[0]["audio"])
    audio = demo.encode([wav])
    prompt = demo.prompt_ids(int(audio.lengths[0]))
    generation = demo.decode([prompt], audio, [40], log_probs=True)
    tokens = generation.tokens[0]
    logits = demo.forced_logits(prompt, audio.row(0), tokens[:-1]).astype(np.float64)
    top = logits.max(-1, keepdims=True)
    log_softmax = logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))
    want = log_softmax[np.arange(len(tokens)), tokens]
    np.testing.assert_allclose(generation.log_probs[0], want, atol=1e-4)
    assert all(lp <= 0 for lp in generation.log_probs[0])

    result = demo.transcribe(wav, options=TranscriptionOptions(log_probs=True))
    assert result.segments[0].avg_logprob == pytest.approx(float(np.mean(want)), abs=1e-4)
    assert demo.transcribe(wav).segments[0].avg_logprob is None  # not asked for: not computed


def test_iso_codes_force_the_language(demo):
    wav = demo_examples()[1]["audio"]  # German
    by_code = demo.transcribe(wav, language="de")
    assert by_code.language == "German"
    assert by_code.text == demo.transcribe(wav, language="German").text
    with pytest.raises(InputError, match=r"English \(en\), German \(de\)"):
        demo.transcribe(wav, language="fr")
    # a region or script as BCP 47 tags name them (browsers' navigator.language, Android's Locale)
    assert demo.transcribe(wav, language="de-DE").text == by_code.text
    assert demo.detect_language(wav) and demo.transcribe(wav, language="de_AT").language == "German"
    with pytest.raises(
        InputError, match=r"^unsupported language 'auto' \(leave the language out to detect it\)"
    ):
        demo.transcribe(wav, language="auto")


def test_results_carry_their_options_and_timings(tiny):
    options = TranscriptionOptions(max_new_tokens=6, ignore_stop=True)
    result = tiny.transcribe(noise_clip(2.0), options=options)
    assert result.options is options
    assert len(result.segments[0].tokens) == 6
    assert len(result.timings.encode) == len(result.timings.prefill) == 1
    assert len(result.timings.steps) == 5  # the prefill gives the first token
    assert all(t > 0 for t in [*result.timings.encode, *result.timings.prefill, *result.timings.steps])


def test_main_language_is_the_one_spoken_longest():
    segments = [
        Segment(0.0, 10.0, "a", "English"),
        Segment(10.0, 35.0, "b", "German"),
        Segment(35.0, 38.0, "c", "English"),
        Segment(38.0, 39.0, "", ""),
    ]
    t = Transcript.of(segments, 39.0)
    assert (t.language, t.languages, t.text) == ("German", ["English", "German", "English"], "a b c")
    assert Transcript.of([], 1.0).language == ""


@pytest.mark.parametrize(
    "texts,languages,joined",
    [
        (["Stelle die Lautstärke auf 85.", "Turn on the lights."], ["German", "English"], None),
        (["Hello there.", " General Kenobi. "], ["English", "English"], "Hello there. General Kenobi."),
        (["今天天气很好。", "我们去公园吧。"], ["Chinese", "Chinese"], "今天天气很好。我们去公园吧。"),
        (["明日は晴れです。", "行きましょう"], ["Japanese", "Japanese"], "明日は晴れです。行きましょう"),
        (["佢哋去咗", "香港"], ["Cantonese", "Cantonese"], "佢哋去咗香港"),
        (["我用iPhone", "拍照。", "Very good."], ["Chinese", "", "English"], "我用iPhone拍照。Very good."),
        (["Hola.", "", "  ", "Adiós."], ["Spanish", "", "", ""], "Hola. Adiós."),
        (["One", "two"], ["", ""], "One two"),
    ],
)
def test_chunk_texts_are_joined_as_their_language_writes(texts, languages, joined):
    """A space between chunks of languages written with spaces, none next to Chinese or Japanese
    characters, whatever the chunks' languages (also none); never a double space. The official
    package glued them: ``...auf 85.Turn``."""
    pairs = enumerate(zip(texts, languages, strict=True))
    segments = [Segment(float(i), i + 1.0, t, lang) for i, (t, lang) in pairs]
    text = Transcript.of(segments, float(len(texts))).text
    assert text == (joined or " ".join(texts))
    assert "  " not in text and text == text.strip()


def test_inputs_that_are_not_audio_or_text_are_refused_in_one_line(demo):
    from qwen_asr_edge.runtime import AudioError

    with pytest.raises(AudioError, match=r"^<list>: unsupported audio input of type list$"):
        demo.transcribe([0.0, 0.1])
    with pytest.raises(InputError, match="context must be a string"):
        demo.transcribe_batch([noise_clip(1.0)], context=5)


def test_arguments_of_the_wrong_type_are_refused_naming_them(demo):
    """From a new-user helper: these raised TypeErrors and AttributeErrors from deep inside
    ("'<=' not supported between 'int' and 'str'", "'dict' object has no attribute
    'word_timestamps'"), were taken silently (log_probs="yes"), or read a path's characters as
    inputs (transcribe_batch("a.wav"))."""
    from qwen_asr_edge.runtime import AudioError, SessionSettings

    for fields, says in (
        ({"batch_size": "8"}, "batch_size must be a whole number; got '8' (str)"),
        ({"batch_size": 2.5}, "batch_size must be a whole number; got 2.5 (float)"),
        ({"batch_size": True}, "batch_size must be a whole number; got True (bool)"),
        ({"max_new_tokens": 9.0}, "max_new_tokens must be a whole number"),
        ({"max_chunk_seconds": "30"}, "max_chunk_seconds must be a number; got '30' (str)"),
        ({"log_probs": "yes"}, "log_probs must be True or False; got 'yes' (str)"),
        ({"vad_parameters": {"threshold": 0.3}}, "vad_parameters must be a VadOptions or None"),
    ):
        with pytest.raises(TypeError, match=f"^{re.escape(says)}"):
            TranscriptionOptions(**fields)
    with pytest.raises(ValueError, match="tokens_per_second must be above 0"):
        TranscriptionOptions(tokens_per_second=0)
    with pytest.raises(TypeError, match="threads must be a whole number; got '4'"):
        SessionSettings(threads="4")
    # numpy's numbers are taken, as Python's (options end up in JSON)
    options = TranscriptionOptions(
        batch_size=np.int64(4), max_chunk_seconds=np.float32(20), log_probs=np.True_
    )
    assert (type(options.batch_size), type(options.max_chunk_seconds), type(options.log_probs)) == (
        int,
        float,
        bool,
    )
    clip = noise_clip(1.0)
    with pytest.raises(TypeError, match=r"^options must be a TranscriptionOptions .* got dict$"):
        demo.transcribe(clip, options={"batch_size": 2})
    with pytest.raises(TypeError, match=r"^options must be a StreamingOptions .* got dict$"):
        demo.stream(options={"step_seconds": 1})
    with pytest.raises(TypeError, match=r"^settings must be a SessionSettings .* got dict$"):
        Transcriber(demo_bundle(), settings={"threads": 2})
    with pytest.raises(TypeError, match="transcribe_batch takes a list of inputs; got one str"):
        demo.transcribe_batch("english.wav")
    with pytest.raises(
        AudioError, match=r"this is \(sample_rate, samples\), the order scipy.io.wavfile.read"
    ):
        demo.transcribe((16000, clip))
    with pytest.raises(AudioError, match="the sample rate must be a whole number of Hz; got a str"):
        demo.transcribe((clip, "16000"))
    with pytest.raises(AudioError, match='^"": an empty file name$'):
        demo.transcribe("")
    assert demo.transcribe((clip, 16000.0)).duration == 1.0  # a whole float rate is a rate
