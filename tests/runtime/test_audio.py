"""Audio loading: formats, channels, rates, integer input, and the errors users see."""

from __future__ import annotations

import importlib.util
import logging
import os
import sys

import numpy as np
import pytest
import soundfile as sf

from qwen_asr_edge.runtime.audio import BLOCK_SECONDS, audio_files, load_audio, read_blocks
from qwen_asr_edge.runtime.errors import AudioError, AudioFileNotFoundError, MissingDependencyError
from tests.support import noise_clip, require, truncation_warnings, write_media


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


def _cut(path, keep: float = 0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


@pytest.mark.parametrize(
    "fmt,subtype",
    [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("MP3", "MPEG_LAYER_III")],
)
def test_truncated_file_is_decoded_to_where_it_ends_with_one_warning(tmp_path, caplog, fmt, subtype):
    """WAV announces its byte count, FLAC its samples (and its decoder fails at the cut), MP3 its
    frame count (Xing): each cut in half decodes to about half, named as truncated once."""
    path = tmp_path / f"cut.{fmt.lower()}"
    sf.write(path, noise_clip(24.0) * 0.5, 16000, format=fmt, subtype=subtype)
    _cut(path)
    with caplog.at_level(logging.WARNING, logger="qwen_asr_edge"):
        whole = load_audio(path)
    assert whole.size / 16000 == pytest.approx(12.0, abs=0.5)  # not 24 s, and not an error
    (warning,) = truncation_warnings(caplog)
    assert warning == (
        f"{path}: truncated: the header announces 24.0 s, the file decodes to {whole.size / 16000:.1f} s; "
        "transcribed what is there"
    )
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="qwen_asr_edge"):
        reader = read_blocks(path, 16000)
        streamed = np.concatenate(list(reader))
    assert reader.samples == streamed.size == whole.size  # the length a transcript reports
    np.testing.assert_array_equal(streamed, whole)
    assert len(truncation_warnings(caplog)) == 1


@pytest.mark.parametrize("subtype", ["VORBIS", "OPUS"])
def test_truncated_ogg_decodes_what_is_there(tmp_path, caplog, subtype):
    """Ogg has no length in its header (libsndfile reads the last page's position): a cut file is
    just shorter, never an error."""
    path = tmp_path / "cut.ogg"
    sf.write(path, noise_clip(8.0) * 0.5, 16000, format="OGG", subtype=subtype)
    _cut(path)
    got = load_audio(path)
    assert 2.0 < got.size / 16000 < 6.0


def test_a_file_that_decodes_to_nothing_stays_an_error(tmp_path):
    path = tmp_path / "head.flac"
    sf.write(path, noise_clip(4.0), 16000, format="FLAC")
    _cut(path, keep=0.02)  # the header and part of the first frame
    with pytest.raises(AudioError, match="head.flac: not a readable audio file"):
        load_audio(path)


def test_names_that_are_not_utf8_are_read_and_shown_escaped(tmp_path):
    name = os.fsdecode(b"caf\xe9.wav")  # Latin-1, as on old archives: a surrogate escape in Python
    sf.write(os.fsencode(tmp_path / name), noise_clip(1.0), 16000)  # soundfile takes such names as bytes
    assert load_audio(tmp_path / name).size == 16000
    with pytest.raises(AudioError) as caught:
        load_audio(tmp_path / os.fsdecode(b"gon\xe9.wav"))
    message = str(caught.value)
    assert message == f"{tmp_path}/gon\\xe9.wav: no such file"
    message.encode("utf-8")  # printable: no surrogate left


def test_folders_give_audio_and_video_files_and_say_what_they_skip(tmp_path):
    for name in (
        "b.wav",
        "a.m4a",
        "c.MP4",
        "notes.txt",
        "cover",
        ".hidden.wav",
        os.fsdecode(b"\xe9t\xe9.flac"),
    ):
        (tmp_path / name).touch()
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "x.wav").touch()
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "sub" / "d.ogg").touch()
    (tmp_path / "sub" / "deeper" / "e.opus").touch()
    (tmp_path / "link").symlink_to(tmp_path / "sub")
    files, skipped = audio_files([tmp_path])
    assert [f.name for f in files] == ["a.m4a", "b.wav", "c.MP4", os.fsdecode(b"\xe9t\xe9.flac")]
    reasons = {s.path.name: s.reason for s in skipped}
    assert reasons == {
        "cover": "not an audio or video file (files without a suffix are not read from folders)",
        "link": "a link to a folder (not followed)",
        "notes.txt": "not an audio or video file (.txt is not read from folders)",
        "sub": "a folder (pass --recursive to include sub-folders)",
    }
    files, skipped = audio_files([tmp_path, tmp_path / "notes.txt"], recursive=True)
    names = [f.relative_to(tmp_path).as_posix() for f in files]
    # sorted, depth first; a file as given comes after the folder, as it was named
    assert names[3:] == ["sub/d.ogg", "sub/deeper/e.opus", os.fsdecode(b"\xe9t\xe9.flac"), "notes.txt"]
    assert "sub" not in {s.path.name for s in skipped}


def _require_av() -> None:
    require(importlib.util.find_spec("av") is not None, "PyAV (the [media] extra)")


@pytest.mark.parametrize(
    "name,codec,video",
    [("memo.m4a", "aac", False), ("talk.mp4", "aac", True), ("talk.mkv", "aac", True),
     ("talk.webm", "libopus", True)],
)  # fmt: skip
def test_reads_what_libsndfile_cannot_through_pyav(tmp_path, name, codec, video):
    _require_av()
    wav = noise_clip(3.0) * 0.5
    path = write_media(tmp_path / name, wav, codec, video=video)
    got = load_audio(path)
    assert got.dtype == np.float32 and got.ndim == 1
    assert abs(got.size - wav.size) < 2000  # the codec's priming and padding
    assert np.std(got) == pytest.approx(np.std(wav), rel=0.2)


def test_long_pyav_files_are_read_a_block_at_a_time_like_whole(tmp_path):
    _require_av()
    import soxr

    wav = soxr.resample(noise_clip(25.0) * 0.5, 16000, 44100).astype(np.float32)
    path = write_media(tmp_path / "memo.m4a", wav, "aac", rate=44100)
    reader = read_blocks(path, 16000)
    blocks = list(reader)
    assert len(blocks) >= 3 and max(b.size for b in blocks) <= BLOCK_SECONDS * 16000 + 1000
    whole = load_audio(path)
    assert reader.samples == whole.size
    np.testing.assert_allclose(np.concatenate(blocks)[200:-200], whole[200:-200], atol=1e-3)


def test_pyav_refusals_are_one_line_audio_errors(tmp_path, caplog):
    _require_av()
    silent = write_media(tmp_path / "screen.mp4", None, video=True)
    with pytest.raises(AudioError, match="screen.mp4: a video without sound"):
        load_audio(silent)
    text = tmp_path / "notes.m4a"
    text.write_text("not audio\n" * 50)
    with pytest.raises(AudioError, match="notes.m4a: not a readable audio or video file"):
        load_audio(text)
    cut = _cut(write_media(tmp_path / "cut.webm", noise_clip(8.0) * 0.5, "libopus"))
    with caplog.at_level(logging.WARNING, logger="qwen_asr_edge"):
        got = load_audio(cut)
    assert 2.0 < got.size / 16000 < 6.0
    assert truncation_warnings(caplog) and "header announces 8.0 s" in truncation_warnings(caplog)[0]


def test_decoder_errors_mid_file_are_audio_errors(tmp_path, monkeypatch):
    """FFmpeg's errors (here one raised by the decoder after the first frames, where no length was
    announced) are AudioErrors naming the file, never PyAV's own exceptions."""
    _require_av()
    import av

    path = write_media(tmp_path / "memo.mkv", noise_clip(3.0) * 0.5, "aac", video=True)
    decode = av.container.InputContainer.decode

    def failing(self, *streams):
        for i, frame in enumerate(decode(self, *streams)):
            if i == 10:
                raise av.error.InvalidDataError(1094995529, "Invalid data found when processing input")
            yield frame

    monkeypatch.setattr(av.container.InputContainer, "decode", failing)
    with pytest.raises(AudioError, match=r"memo.mkv: cannot be decoded after 0\.\d s \(Invalid data found"):
        load_audio(path)


def test_a_file_needing_pyav_without_it_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # import av now raises ImportError
    (tmp_path / "memo.m4a").write_bytes(b"\0" * 100)
    with pytest.raises(
        MissingDependencyError, match=r"memo.m4a: reading .m4a files needs the \[media\] extra"
    ):
        load_audio(tmp_path / "memo.m4a")


def test_a_wav_under_a_pyav_suffix_is_read_without_pyav(tmp_path, monkeypatch):
    """A recorder's WAV renamed .m4a was refused for lacking the [media] extra, which it needs not."""
    monkeypatch.setitem(sys.modules, "av", None)
    wav = np.sin(np.linspace(0, 300, 16000)).astype(np.float32) * 0.5
    sf.write(tmp_path / "memo.m4a", wav, 16000, subtype="FLOAT", format="WAV")
    np.testing.assert_array_equal(load_audio(tmp_path / "memo.m4a"), wav)
