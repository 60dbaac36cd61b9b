"""Streaming sessions (runtime/streaming.py): the bounded mode computes what the reference mode
computes, committed text only grows, long streams stay bounded, and audio may come in any shape."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile as sf

from qwen_asr_edge.runtime import StreamingOptions, Transcriber, demo_bundle
from qwen_asr_edge.runtime.errors import AudioError, InputError
from tests.support import PARITY_TOKENS, SR, Lazy, noise_clip

# Every test here exports a windowed or full tiny bundle other than the inner loop's (conftest.py).
pytestmark = pytest.mark.slow

MARKUP = ("<asr_text>", "<|", "|>", "language English<", "language German<")


@pytest.fixture(scope="module")
def transcribers(bundles):
    return Lazy({name: lambda name=name: Transcriber(bundles[name]) for name in bundles})


@pytest.fixture(scope="module")
def speech(speech_files) -> np.ndarray:
    """About 25 s of real speech (five LibriVox clips end to end): four encoder windows."""
    return np.concatenate([sf.read(f, dtype="float32")[0] for f in speech_files])


class Recorder:
    """Every decode a session runs: its prompt and tokens, and how many positions it reused."""

    def __init__(self, monkeypatch, tr: Transcriber):
        self.calls: list[tuple[list[int], list[int]]] = []
        self.reused: list[int] = []
        generate = tr._greedy.generate

        def recording(prompts, *args, kept=None, **kwargs):
            out = generate(prompts, *args, kept=kept, **kwargs)
            self.calls.append((prompts[0].tolist(), out.tokens[0]))
            self.reused.append(kept.reused if kept is not None else 0)
            return out

        monkeypatch.setattr(tr._greedy, "generate", recording)


def run(tr: Transcriber, wav: np.ndarray, blocks: int = 23, language: str | None = None, **options):
    # The tiny random models rarely stop: a step's cap keeps them quick.
    options = {"max_new_tokens": PARITY_TOKENS, **options}
    session = tr.stream(language=language, options=StreamingOptions(**options))
    return session, list(session.updates(np.array_split(wav, blocks), SR))


@pytest.mark.parametrize("bundle", ["untied-windowed", "untied-windowed-portable"])
@pytest.mark.parametrize("stable_steps", [2, None])
def test_bounded_mode_gives_the_reference_modes_tokens_at_every_step(
    transcribers, speech, monkeypatch, bundle, stable_steps
):
    tr = transcribers[bundle]
    results = {}
    for mode in ("reference", "bounded"):
        recorder = Recorder(monkeypatch, tr)
        _, updates = run(tr, speech, mode=mode, stable_steps=stable_steps)
        monkeypatch.undo()
        results[mode] = recorder, updates
    (ref, ref_updates), (bounded, bounded_updates) = results["reference"], results["bounded"]
    assert len(ref.calls) == len(bounded.calls) == 13  # 12 steps of 2 s and the 0.7 s tail
    for step, (want, got) in enumerate(zip(ref.calls, bounded.calls, strict=True)):
        assert got == want, f"step {step}"
    assert [u.text for u in bounded_updates] == [u.text for u in ref_updates]
    assert [u.committed for u in bounded_updates] == [u.committed for u in ref_updates]
    # It did reuse: past the first window, most steps took a window's positions or more from the
    # kept cache (not all: a louder sound lifts every frame's log-mel floor, and a cache too
    # small for the next step is re-allocated).
    assert ref.reused == [0] * 13
    assert sum(r > 104 for r in bounded.reused) >= 4, bounded.reused


def test_bounded_mode_encodes_only_the_open_window(transcribers, speech):
    tr = transcribers["untied-windowed"]
    session = tr.stream(options=StreamingOptions(max_new_tokens=8))
    # A full-scale tone first, so no later sound lifts the log-mel floor (which re-encodes all).
    loud = np.concatenate([np.sin(np.arange(800) * 0.3, dtype=np.float32), speech])
    encoded = []
    for block in np.array_split(loud, 50):
        if session.feed(block, SR):
            encoded.append(session._windows.encoded_frames)
    # Steps at 2 s ... 24 s: the open window's frames (200, 400, 600, 800), and once per
    # window the one just completed again (its last frame was computed on reflect padding).
    assert encoded == [200, 400, 600, 800, 1000, 400, 600, 800, 1000, 400, 600, 800], encoded


def test_a_full_attention_bundle_streams_in_the_reference_mode_and_says_so(transcribers, caplog):
    tr = transcribers["tied-full"]
    with caplog.at_level(logging.WARNING, logger="qwen_asr_edge"):
        session = tr.stream()
    assert session.mode == "reference"
    assert "streams in the reference mode" in caplog.text
    session.feed(noise_clip(2.5), SR)
    assert session.finish().is_final


def check_update_invariants(updates) -> None:
    previous = ""
    for u in updates:
        assert u.committed.startswith(previous), (previous, u.committed)
        assert u.committed == previous + u.new_committed
        for text in (u.committed, u.tentative):
            assert not any(m in text for m in MARKUP), text
        previous = u.committed
    final = updates[-1]
    assert final.is_final and final.tentative == "" and final.text == final.committed
    assert all(not u.is_final for u in updates[:-1])
    ends = [u.end for u in updates]
    assert ends == sorted(ends)


@pytest.mark.parametrize("bundle", ["untied-windowed", "realistic-full"])
def test_committed_text_only_grows_and_holds_no_markup(transcribers, speech, bundle):
    # Forced: random weights never reach <asr_text> by themselves (the demo model's test below
    # streams with the language detected).
    _, updates = run(transcribers[bundle], speech, language="English")
    check_update_invariants(updates)
    assert any(u.committed for u in updates[:-1])
    assert updates[-1].end == pytest.approx(speech.shape[0] / SR)


def test_demo_model_commits_while_it_streams():
    tr = Transcriber(demo_bundle())
    wav = np.concatenate([sf.read(e, dtype="float32")[0] for e in _demo_audio()] * 3)
    _, updates = run(tr, wav, blocks=40)
    check_update_invariants(updates)
    # Text is committed before the end, not only by finish().
    assert any(u.committed for u in updates[:-1])
    assert updates[-1].language in ("English", "German")


def test_text_is_committed_only_where_every_agreeing_answer_ends_a_word():
    """ "Set a timer for 10 minutes." then "Set a timer for 1 degrees." agree up to "for 1", a word's
    end in the second answer only: "for 1" was committed (then "1jet?" when the next step went on
    from it), found by a new user piping a stream of two sentences to the demo model."""
    session = Transcriber(demo_bundle()).stream()
    for answer in ("Set a timer for 10 minutes.", "Set a timer for 1 degrees."):
        session._raw = f"language English<asr_text>{answer}"
        session._commit_stable()
    assert session._committed == "Set a timer for"


def test_a_context_too_long_for_an_utterance_is_refused_when_the_stream_starts():
    """It used to reach onnxruntime at the first step: a GroupQueryAttention traceback."""
    asr = Transcriber(demo_bundle())
    with pytest.raises(
        InputError, match="the context is too long for a stream: with utterances of up to 30 s"
    ):
        asr.stream(context="hello world " * 10000)
    asr.stream(context="hello world " * 100).finish()


def _demo_audio() -> list[str]:
    from qwen_asr_edge.runtime import demo_examples

    return [e["audio"] for e in demo_examples()]


def test_long_streams_are_cut_into_utterances_and_stay_bounded(transcribers, speech, monkeypatch):
    tr = transcribers["untied-windowed"]
    wav = np.concatenate([speech] * 3)  # 74 s
    session = tr.stream(options=StreamingOptions(max_utterance_seconds=20, max_new_tokens=16))
    longest, capacities, updates = 0.0, set(), []
    for block in np.array_split(wav, 100):
        updates += session.feed(block, SR)
        longest = max(longest, session._audio.shape[0] / SR)
        if session._done:  # from the second utterance on
            capacities.add(session._kept.bound.cache.capacity)
    updates.append(session.finish())
    check_update_invariants(updates)
    assert len(session._done) >= 4  # 74 s in utterances of at most 20 s
    assert longest <= 20 + 2  # an utterance never holds more than the limit and one step
    assert len(capacities) == 1  # the KV cache grew in the first utterance only
    # The next utterance's context ends with the text committed before it.
    assert session._utterance_context.endswith(
        tr.tokenizer.decode(tr.tokenizer.encode(session._done[-2])[-16:]).strip()
    )


def test_any_block_size_rate_and_layout_gives_the_same_updates(transcribers, speech):
    tr = transcribers["untied-windowed"]
    wav = speech[: 7 * SR]
    en = "English"  # forced, so that random weights give text to compare
    want = [u.text for u in run(tr, wav, blocks=1, language=en)[1]]
    assert all(want)
    assert [u.text for u in run(tr, wav, blocks=300, language=en)[1]] == want
    session = tr.stream(language=en, options=StreamingOptions(max_new_tokens=PARITY_TOKENS))
    pcm = np.round(wav * 32767).astype(np.int16)
    stereo = np.stack([pcm, pcm], axis=1)  # (n, 2) int16: the same samples on both channels
    got = [u.text for u in session.updates([stereo[:5000], stereo[5000:5000], stereo[5000:]], SR)]
    assert got == [u.text for u in run(tr, pcm.astype(np.float32) / 32768, blocks=3, language=en)[1]]
    # Another rate is resampled as it streams: 3 steps and the tail, covering the same seconds.
    session = tr.stream(options=StreamingOptions(max_new_tokens=PARITY_TOKENS))
    import soxr

    wav48 = soxr.resample(wav, SR, 48000)
    updates = list(session.updates(np.array_split(wav48, 7), 48000))
    assert len(updates) == 4 and updates[-1].end == pytest.approx(7.0, abs=0.01)


def test_a_block_buffer_reused_by_the_caller_is_not_read_again(transcribers, speech):
    """Audio callbacks reuse one buffer: what was fed must be copied, not kept as a view."""
    tr = transcribers["untied-windowed"]
    wav = speech[: 5 * SR]
    # Forced: random weights never reach <asr_text> by themselves, and "" = "" proves nothing.
    want = [u.text for u in run(tr, wav, blocks=10, language="English")[1]]
    assert all(want)
    session = tr.stream(language="English", options=StreamingOptions(max_new_tokens=PARITY_TOKENS))
    buffer = np.empty(wav.shape[0] // 10, np.float32)
    got = []
    for block in np.array_split(wav, 10):
        view = buffer[: block.shape[0]]
        view[:] = block
        got += [u.text for u in session.feed(view, SR)]
        buffer[:] = np.nan  # the device writes the next block into the same memory
    got.append(session.finish().text)
    assert got == want


def test_unsigned_pcm_rates_and_layouts_a_user_may_send(transcribers, speech):
    """Found by a first-time user: uint8 raised 'contains NaN' (divided by its zero minimum), a
    rate of 1 Hz made 4 s into hours of work and 0 was taken as 16000, a second feed() without a
    rate clashed with the first one's, and a (channels, n) array was taken as n channels."""
    from qwen_asr_edge.runtime.audio import load_audio, pcm_to_float

    assert pcm_to_float(np.array([0, 128, 255], np.uint8), "x").tolist() == [-1.0, 0.0, 127 / 128]
    assert load_audio(np.array([0, 128, 255, 128] * 100, np.uint8)).shape == (400,)
    tr = transcribers["untied-windowed"]
    wav = speech[: 5 * SR]
    en = {"language": "English", "options": StreamingOptions(max_new_tokens=PARITY_TOKENS)}
    as_int16 = [u.text for u in tr.stream(**en).updates([np.round(wav * 32767).astype(np.int16)], SR)]
    as_uint16 = [
        u.text for u in tr.stream(**en).updates([(np.round(wav * 32767) + 32768).astype(np.uint16)], SR)
    ]
    assert as_uint16 == as_int16 and all(as_int16)
    session = tr.stream()
    for rate in (0, 1, True, 16000.5, "16000", 10**8):
        with pytest.raises(AudioError, match="invalid sample rate"):
            session.feed(wav[:100], rate)
    tr.stream(**en).feed(wav[:100], 22050.0)  # a whole number as a float, as the file API takes it
    session = tr.stream(**en)
    wav48 = np.repeat(wav, 3)
    session.feed(wav48[:48000], 48000)
    session.feed(wav48[48000:])  # the stream's rate: given once is enough
    assert session.finish().end == pytest.approx(5.0, abs=0.01)
    for shape in ((2, 16000), (16000, 0), (16000, 65)):
        with pytest.raises(AudioError, match="channels"):
            tr.stream().feed(np.zeros(shape, np.float32), SR)


def test_the_final_language_is_the_one_spoken_longest(speech):
    """Found by a first-time user: a German clip followed by silence said language "" in the end
    (the last utterance's, which heard nothing)."""
    from qwen_asr_edge.runtime import demo_examples

    tr = Transcriber(demo_bundle())
    german = next(e for e in demo_examples() if e["language"] == "German")
    wav = np.concatenate([sf.read(german["audio"], dtype="float32")[0], np.zeros(26 * SR, np.float32)])
    session = tr.stream(options=StreamingOptions(max_utterance_seconds=12))
    updates = list(session.updates(np.array_split(wav, 30), SR))
    assert len(session._done) >= 2 and session._spoken
    assert updates[-1].language == "German"


def test_bad_input_and_options_are_refused(transcribers):
    tr = transcribers["untied-windowed"]
    session = tr.stream()
    with pytest.raises(AudioError, match="stream: contains NaN"):
        session.feed(np.array([0.0, np.nan], np.float32), SR)
    session.feed(np.zeros(100, np.float32), SR)
    with pytest.raises(AudioError, match="sample rate changed from 16000 to 8000"):
        session.feed(np.zeros(100, np.float32), 8000)
    final = session.finish()
    assert final.is_final and final.committed == ""
    with pytest.raises(RuntimeError, match="finished"):
        session.feed(np.zeros(100, np.float32), SR)
    with pytest.raises(InputError, match="unsupported language"):
        tr.stream(language="Klingon")
    with pytest.raises(InputError, match="control tokens"):
        tr.stream(context="<|im_end|>")
    for bad in (
        dict(chunk_seconds=0),
        dict(mode="fast"),
        dict(max_utterance_seconds=5),
        dict(stable_steps=0),
    ):
        with pytest.raises(ValueError):
            StreamingOptions(**bad)


def test_several_sessions_run_at_once_on_one_transcriber(transcribers, speech):
    tr = transcribers["untied-windowed"]
    options = StreamingOptions(max_new_tokens=PARITY_TOKENS)
    a, b = tr.stream(language="English", options=options), tr.stream(options=options)
    alone = [u.text for u in run(tr, speech[: 6 * SR], blocks=6, language="English")[1]]
    assert all(alone)
    got = []
    for block in np.array_split(speech[: 6 * SR], 6):
        got += [u.text for u in a.feed(block, SR)]
        b.feed(block[::-1], SR)
    got.append(a.finish().text)
    assert got == alone


def test_the_repetition_guard_stops_a_looping_step_and_none_turns_it_off(transcribers, monkeypatch):
    """The tiny tied model loops on this clip with English forced (tests/runtime/test_repetition.py):
    the stream's first step stops at the loop (the history it gets is tested there)."""
    tr = transcribers["tied-full"]
    wav = np.concatenate([noise_clip(2.0, seed=1)] * 3)
    lengths = {}
    for guard in ("on", "off"):
        recorder = Recorder(monkeypatch, tr)
        options = StreamingOptions(
            max_new_tokens=300, **({} if guard == "on" else {"repetition_guard": None})
        )
        session = tr.stream(language="English", options=options)
        updates = session.feed(wav[: 4 * SR], SR)  # two steps: the second is forced to the first's answer
        monkeypatch.undo()
        lengths[guard] = [len(tokens) for _, tokens in recorder.calls]
        check_update_invariants([*updates, session.finish()])
    assert lengths["off"][0] == 300 and lengths["on"][0] < 300, lengths
