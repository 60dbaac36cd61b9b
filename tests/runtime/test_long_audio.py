"""Long recordings: read from disk a block at a time, cut exactly as a whole array is cut, and
transcribed with word times into subtitles that stay in order and inside the file."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from qwen_asr_edge.runtime.audio import load_audio, read_blocks
from qwen_asr_edge.runtime.chunking import MIN_CHUNK_SECONDS, cut_at_quiet_points, split_at_quiet_points
from qwen_asr_edge.runtime.errors import AudioError
from tests.support import noise_clip
from tests.support import run_cli as cli


@pytest.fixture(scope="module")
def ten_minutes(tmp_path_factory, speech_files):
    """Ten minutes of real speech: the LibriVox clips in turn, with 0.7-2 s of silence between."""
    rng = np.random.default_rng(0)
    parts, total = [], 0
    for path in itertools.cycle(speech_files):
        wav = load_audio(path)
        gap = np.zeros(int(rng.uniform(0.7, 2.0) * 16000), dtype=np.float32)
        parts += [wav, gap]
        total += wav.size + gap.size
        if total >= 600 * 16000:
            break
    out = tmp_path_factory.mktemp("long") / "ten_minutes.wav"
    sf.write(out, np.concatenate(parts)[: 600 * 16000], 16000, subtype="PCM_16")
    return out


@pytest.mark.parametrize("max_seconds", [30.0, 47.5, 180.0])
def test_chunks_read_in_blocks_equal_whole_file_chunks(ten_minutes, max_seconds):
    whole = split_at_quiet_points(load_audio(ten_minutes), 16000, max_seconds)
    streamed = list(cut_at_quiet_points(read_blocks(ten_minutes, 16000), 16000, max_seconds))
    assert [(c.offset, c.duration) for c in streamed] == [(c.offset, c.duration) for c in whole]
    for a, b in zip(streamed, whole, strict=True):
        np.testing.assert_array_equal(a.wav, b.wav)
    assert sum(c.duration for c in streamed) == pytest.approx(600.0)


def test_reading_in_blocks_resamples_and_mixes_down(tmp_path):
    stereo = np.stack([noise_clip(95.0, seed=1), noise_clip(95.0, seed=2)], axis=1)
    path = tmp_path / "stereo44k.flac"
    import soxr

    sf.write(path, soxr.resample(stereo, 16000, 44100), 44100)
    whole = split_at_quiet_points(load_audio(path), 16000, 30.0)
    streamed = list(cut_at_quiet_points(read_blocks(path, 16000), 16000, 30.0))
    assert len(streamed) == len(whole)
    for a, b in zip(streamed, whole, strict=True):
        assert abs(a.offset - b.offset) < 0.01 and abs(a.duration - b.duration) < 0.01
        n = min(a.wav.size, b.wav.size) - 200  # the resamplers differ only at the very ends
        assert np.abs(a.wav[200:n] - b.wav[200:n]).max() < 1e-3


def test_reading_in_blocks_refuses_bad_files(tmp_path):
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="no samples"):
        list(read_blocks(empty, 16000))


@pytest.mark.slow
def test_ten_minutes_with_timestamps_streamed_to_subtitles(bundles, ten_minutes, tmp_path):
    """The whole file is never decoded at once (the runtime streams it), and the cues parse."""
    import json

    import srt
    import webvtt

    out = tmp_path / "out"
    common = [
        "--bundle",
        str(bundles["untied-full-aligner"]),
        "--timestamps",
        "--max-new-tokens",
        "16",
        "--language",  # random weights write no <asr_text>: without a language, no text, no cues
        "en",
        "-o",
        str(out),
    ]
    for fmt in ("srt", "vtt", "json"):
        result = cli("transcribe", str(ten_minutes), *common, "-f", fmt, timeout=900)
        assert result.returncode == 0, result.stderr
    doc = json.loads((out / "ten_minutes.json").read_text())
    assert doc["duration"] == pytest.approx(600.0)
    starts = [s["start"] for s in doc["segments"]]
    assert len(starts) >= 20 and starts == sorted(starts)  # 30 s chunks, in file order
    assert all(0 < s["end"] - s["start"] <= 30.0 for s in doc["segments"])  # never past the limit
    cues = list(srt.parse((out / "ten_minutes.srt").read_text(encoding="utf-8")))
    assert cues and all(a.end <= b.start for a, b in itertools.pairwise(cues))
    assert cues[0].start.total_seconds() >= 0 and cues[-1].end.total_seconds() <= 600.5
    assert [c.text for c in webvtt.read(str(out / "ten_minutes.vtt"))] == [c.content for c in cues]


@pytest.mark.slow
def test_long_file_is_never_loaded_whole(bundles, ten_minutes, monkeypatch):
    from qwen_asr_edge.runtime import Transcriber, TranscriptionOptions, audio

    def refuse(path, *a, **k):
        raise AssertionError(f"{path} was decoded whole")

    monkeypatch.setattr(audio, "read_file", refuse)
    tr = Transcriber(bundles["tied-full"], providers="cpu")
    options = TranscriptionOptions(max_new_tokens=4, max_chunk_seconds=120)
    got = tr.transcribe(str(ten_minutes), options=options)
    assert got.duration == pytest.approx(600.0) and len(got.segments) >= 5


def test_short_chunks_over_digital_silence_stay_at_least_half_the_limit():
    """All-zero audio with a limit under the 5 s search window: every cut used to land one
    sample in (a minute became ~a million chunks and the CLI never finished)."""
    wav = np.zeros(61 * 16000, dtype=np.float32)
    wav[::4000] = 0.01  # a few clicks, so that the quietest window is not unique
    chunks = split_at_quiet_points(wav, 16000, 4.0)
    assert all(c.duration >= 2.0 for c in chunks[:-1]) and len(chunks) <= 31
    assert sum(c.duration for c in chunks) == pytest.approx(61.0)


def _signal(kind: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "zeros":
        return np.zeros(n, dtype=np.float32)
    if kind == "noise":
        return (0.3 * rng.standard_normal(n)).astype(np.float32)
    if kind == "clicks":  # digital silence with a few clicks: many equally quiet windows
        wav = np.zeros(n, dtype=np.float32)
        wav[rng.integers(0, n, size=n // 500)] = 0.5
        return wav
    # "speech": bursts of noise with gaps of random length, as utterances and pauses
    wav = np.zeros(n, dtype=np.float32)
    at = 0
    while at < n:
        burst, gap = rng.integers(200, 8000), rng.integers(0, 1500)
        wav[at : at + burst] = 0.3 * rng.standard_normal(min(burst, n - at))
        at += burst + gap
    return wav


@settings(max_examples=300, deadline=None)
@given(
    seconds=st.floats(0.0, 200.0),
    max_seconds=st.floats(2.0, 70.0),
    kind=st.sampled_from(["zeros", "noise", "clicks", "speech"]),
    seed=st.integers(0, 2**16),
    block=st.integers(1, 50_000),
)
def test_chunks_stay_between_the_minimum_and_the_limit(seconds, max_seconds, kind, seed, block):
    """Any length, limit and signal: every chunk <= the limit, >= 1 s (unless the recording is
    shorter than the limit), the recording covered exactly, at most 2 * total / limit + 1 chunks,
    and the same chunks when the samples arrive in blocks. (The official window reached 5 s past
    the limit, and cut 1-37 ms chunks under 5 s.)"""
    sr = 1000  # the rules are in seconds; a low rate keeps hypothesis fast
    n = int(seconds * sr)
    wav = _signal(kind, n, seed)
    chunks = split_at_quiet_points(wav, sr, max_seconds)
    max_len, min_len = int(max_seconds * sr), int(MIN_CHUNK_SECONDS * sr)
    lengths = [c.wav.shape[0] for c in chunks]
    np.testing.assert_array_equal(np.concatenate([wav[:0], *(c.wav for c in chunks)]), wav)
    starts = list(itertools.accumulate(lengths, initial=0))[:-1]
    assert [round(c.offset * sr) for c in chunks] == starts
    assert all(c.duration == c.wav.shape[0] / sr for c in chunks)
    assert all(x <= max_len for x in lengths)
    if n > max_len:
        assert all(x >= min_len for x in lengths)
        assert all(x >= max_len // 2 for x in lengths[:-1])
        assert len(chunks) <= 2 * n / max_len + 1
    else:
        assert len(chunks) == (1 if n else 0)
    blocks = [wav[i : i + block] for i in range(0, n, block)]
    streamed = list(cut_at_quiet_points(blocks, sr, max_seconds))
    assert [(c.offset, c.duration) for c in streamed] == [(c.offset, c.duration) for c in chunks]


@pytest.mark.parametrize("max_seconds", [1.99, 0.5, float("nan")])
def test_limits_under_two_seconds_are_refused(max_seconds):
    from qwen_asr_edge.runtime import TranscriptionOptions

    with pytest.raises(ValueError, match="at least 2"):
        TranscriptionOptions(max_chunk_seconds=max_seconds)
    with pytest.raises(ValueError, match="at least 2"):
        split_at_quiet_points(np.zeros(16000 * 5, dtype=np.float32), 16000, max_seconds)


def demo_recording(path, pattern: str, gaps: list[float]) -> None:
    """The demo examples in the order ``pattern`` gives ("e" English, "g" German), with ``gaps``
    seconds of silence after each."""
    from qwen_asr_edge.runtime.demo import demo_examples

    clips = {e["language"][0].lower(): load_audio(e["audio"]) for e in demo_examples()}
    parts = []
    for key, gap in zip(pattern, gaps, strict=True):
        parts += [clips[key], np.zeros(int(gap * 16000), dtype=np.float32)]
    sf.write(path, np.concatenate(parts), 16000)


@pytest.mark.parametrize("max_seconds", ["2", "4", "7.5"])
def test_cli_chunks_never_pass_the_limit_nor_fall_under_a_second(tmp_path, max_seconds):
    """18 s of the demo's sentences: chunks used to reach 4.4 s at a 4 s limit, and a 0.17 s tail
    decoded to a sentence nobody said."""
    path = tmp_path / "mix.wav"
    demo_recording(path, "gegeg", [0.6, 0.5, 0.8, 0.4, 0.0])
    result = cli("transcribe", path, "--max-chunk-seconds", max_seconds, "-f", "json")
    assert result.returncode == 0, result.stderr
    segments = json.loads(result.stdout)[0]["segments"]
    lengths = [s["end"] - s["start"] for s in segments]
    assert len(segments) > 2 and all(1.0 - 1e-3 <= x <= float(max_seconds) + 1e-3 for x in lengths)
    assert segments[-1]["end"] == pytest.approx(18.07, abs=0.01)


def test_cli_refuses_a_limit_under_two_seconds_in_one_line(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, noise_clip(3.0), 16000)
    result = cli("transcribe", path, "--max-chunk-seconds", "1.5")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "error: --max-chunk-seconds must be a number of seconds, at least 2" in result.stderr


def test_cli_joins_chunk_texts_with_spaces_in_text_txt_and_json(tmp_path):
    """English and German chunks were glued together: ``...auf 85.Turn on ...``."""
    import re

    path = tmp_path / "mix.wav"
    demo_recording(path, "gegeg", [0.6, 0.5, 0.8, 0.4, 0.0])
    options = ["--max-chunk-seconds", "4", "-o", tmp_path / "out"]
    for fmt in ("json", "txt", "srt"):
        result = cli("transcribe", path, *options, "-f", fmt)
        assert result.returncode == 0, result.stderr
    doc = json.loads((tmp_path / "out" / "mix.json").read_text(encoding="utf-8"))
    texts = [s["text"] for s in doc["segments"] if s["text"]]
    assert len(texts) >= 4 and doc["text"] == " ".join(texts)
    assert not re.search(r"[.!?][^\s]", doc["text"]) and "  " not in doc["text"]
    assert (tmp_path / "out" / "mix.txt").read_text(encoding="utf-8") == doc["text"] + "\n"
    srt_texts = [block.split("\n")[2] for block in (tmp_path / "out" / "mix.srt").read_text().split("\n\n")]
    assert srt_texts == texts
