"""Audio loading: formats, channels, rates, integer input, and the errors users see."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from qwen_asr_edge.runtime.audio import load_audio
from qwen_asr_edge.runtime.errors import AudioError, AudioFileNotFoundError
from tests.support import noise_clip


@pytest.mark.parametrize(
    "fmt,subtype,tol",
    [
        ("WAV", "PCM_16", 1e-4),
        ("WAV", "FLOAT", 0),
        ("FLAC", "PCM_24", 1e-6),
        ("OGG", "VORBIS", None),
        ("MP3", "MPEG_LAYER_III", None),
    ],
)
def test_reads_common_formats(tmp_path, fmt, subtype, tol):
    wav = noise_clip(1.0) * 0.5
    path = tmp_path / f"clip.{fmt.lower()}"
    sf.write(path, wav, 16000, format=fmt, subtype=subtype)
    got = load_audio(path)
    assert got.dtype == np.float32 and got.ndim == 1
    if tol is not None:
        np.testing.assert_allclose(got, wav, atol=tol)
    else:  # lossy codecs: same length give or take the codec's frame padding, similar energy
        assert abs(got.shape[0] - wav.shape[0]) < 2000
        assert np.std(got) == pytest.approx(np.std(wav), rel=0.2)


def test_stereo_is_averaged_and_any_rate_is_resampled_like_librosa(tmp_path):
    librosa = pytest.importorskip("librosa")
    left, right = noise_clip(2.0, seed=1), noise_clip(2.0, seed=2)
    path = tmp_path / "stereo.wav"
    stereo = np.stack([left, right], axis=1) * 0.5
    sf.write(path, stereo, 44100, subtype="FLOAT")
    got = load_audio(path)
    mono = stereo.mean(axis=1).astype(np.float32)
    want = librosa.resample(mono, orig_sr=44100, target_sr=16000)  # what the official package does
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_arrays_and_integer_samples():
    wav = noise_clip(0.5)
    np.testing.assert_array_equal(load_audio(wav), wav)
    np.testing.assert_array_equal(load_audio((wav, 16000)), wav)
    pcm = (wav * 16384).astype(np.int16)  # half scale
    np.testing.assert_allclose(load_audio(pcm), pcm / 32768.0, atol=1e-7)
    channels_first = np.stack([wav, wav])  # (2, T) is recognised as channels x samples
    np.testing.assert_allclose(load_audio(channels_first), wav, atol=1e-7)


def test_peak_over_full_scale_is_normalised():
    loud = noise_clip(0.5) * 20
    got = load_audio(loud)
    assert np.abs(got).max() == pytest.approx(1.0)


def test_errors_name_the_file_and_the_problem(tmp_path):
    with pytest.raises(AudioFileNotFoundError, match="missing.wav: no such file"):
        load_audio(tmp_path / "missing.wav")
    empty = tmp_path / "empty.wav"
    empty.touch()
    with pytest.raises(AudioError, match="empty.wav: file is empty"):
        load_audio(empty)
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio at all\n" * 20)
    with pytest.raises(AudioError, match="notes.wav: not a readable audio file"):
        load_audio(text)
    cut_wav = tmp_path / "cut.wav"
    sf.write(cut_wav, noise_clip(1.0), 16000)
    cut_wav.write_bytes(cut_wav.read_bytes()[:16000])
    with pytest.raises(AudioError, match="cut.wav: truncated"):
        load_audio(cut_wav)
    truncated = tmp_path / "truncated.flac"
    sf.write(truncated, noise_clip(1.0), 16000, format="FLAC")
    truncated.write_bytes(truncated.read_bytes()[:30])
    with pytest.raises(AudioError, match="truncated.flac"):
        load_audio(truncated)
    nan = noise_clip(0.5)
    nan[100] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        load_audio(nan)
    with pytest.raises(AudioError, match="no samples"):
        load_audio(np.zeros(0, dtype=np.float32))
    with pytest.raises(AudioError, match="is a folder"):
        load_audio(tmp_path)
