"""Files whose header is damaged or says what is not so, inputs that are not regular files, and
names and text that would break the one-line promise: each an AudioError or InputError in one
honest line, or transcribed as far as it decodes."""

from __future__ import annotations

import importlib.util
import logging
import os
import struct
import subprocess

import numpy as np
import pytest
import soundfile as sf

from qwen_asr_edge.runtime.audio import load_audio, read_blocks
from qwen_asr_edge.runtime.errors import AudioError, InputError, display_name
from qwen_asr_edge.runtime.prompt import normalize_language
from tests.support import noise_clip, truncation_warnings

HAS_AV = importlib.util.find_spec("av") is not None


def _wav(path, seconds: float = 1.0):
    sf.write(path, noise_clip(seconds) * 0.5, 16000, subtype="PCM_16")
    return path


def _patch(path, offset: int, fmt: str, value: int):
    data = bytearray(path.read_bytes())
    struct.pack_into(fmt, data, offset, value)
    path.write_bytes(bytes(data))
    return path


# The canonical 44-byte header soundfile writes: format code at 20, bits per sample at 34.
@pytest.mark.parametrize(
    "name,offset,fmt,value",
    [
        ("format_zero.wav", 20, "<H", 0),
        ("format_unknown.wav", 20, "<H", 0x1234),
        ("format_bogus.wav", 20, "<H", 0x9999),
        ("bits_zero.wav", 34, "<H", 0),
        ("channels_zero.wav", 22, "<H", 0),
    ],
)
def test_a_damaged_format_header_is_one_audio_error(tmp_path, name, offset, fmt, value):
    """libsndfile refuses these, and PyAV (tried next) opens a stream it has no decoder or rate for:
    the error is libsndfile's reason, never PyAV's AttributeError."""
    path = _patch(_wav(tmp_path / name), offset, fmt, value)
    with pytest.raises(AudioError) as caught:
        load_audio(path)
    assert str(caught.value).startswith(f"{path}: not a readable audio file (")
    assert "\n" not in str(caught.value)


@pytest.mark.skipif(not HAS_AV, reason="PyAV (the [media] extra)")
def test_tags_that_are_not_utf8_do_not_make_a_memo_unreadable(tmp_path):
    """FFmpeg hands PyAV the tags' bytes; a Latin-1 title made the open fail with
    'invalid continuation byte'."""
    import av

    path = tmp_path / "memo.m4a"
    wav = noise_clip(2.0) * 0.5
    with av.open(str(path), "w") as out:
        out.metadata["title"] = "QQcafeQQ"
        sound = out.add_stream("aac", rate=16000, layout="mono")
        for i in range(0, wav.size, 1024):
            frame = av.AudioFrame.from_ndarray(wav[None, i : i + 1024].copy(), format="flt", layout="mono")
            frame.sample_rate = 16000
            out.mux(sound.encode(frame))
        out.mux(sound.encode(None))
    data = path.read_bytes()
    assert data.count(b"QQcafeQQ") == 1
    path.write_bytes(data.replace(b"QQcafeQQ", b"QQcaf\xe9QQ"))  # "café" in Latin-1
    assert load_audio(path).size / 16000 == pytest.approx(2.0, abs=0.2)


@pytest.mark.skipif(not HAS_AV, reason="PyAV (the [media] extra)")
def test_pyav_text_errors_are_named_as_such(tmp_path, monkeypatch):
    import av

    def refuse(*args, **kwargs):
        raise UnicodeDecodeError("utf-8", b"\xc2", 0, 1, "invalid continuation byte")

    monkeypatch.setattr(av, "open", refuse)
    path = tmp_path / "memo.m4a"
    path.write_bytes(b"\0" * 100)
    with pytest.raises(AudioError, match=r"memo.m4a: not a readable audio or video file \(text in it"):
        load_audio(path)


@pytest.mark.parametrize(
    "make,reason",
    [
        (lambda p: os.mkfifo(p), "is not a regular file (a pipe): save it to a file first"),
        (None, "is not a regular file (a device): save it to a file first"),
    ],
)
def test_pipes_and_devices_are_named_not_called_empty(tmp_path, make, reason):
    if make is None:
        path = "/dev/zero"  # never ends: must not be read
    else:
        path = tmp_path / "fifo.wav"
        make(path)  # nobody writes to it: reading it would hang
    with pytest.raises(AudioError) as caught:
        load_audio(path)
    assert str(caught.value) == f"{path}: {reason}"


def test_kernel_pseudo_files_are_not_called_empty():
    if not os.path.exists("/proc/self/status"):
        pytest.skip("no /proc")
    with pytest.raises(AudioError, match=r"^/proc/self/status: is a kernel pseudo-file"):
        load_audio("/proc/self/status")


@pytest.mark.parametrize("suffix,reason", [(".mp3", " (no MP3 frames found)"), (".au", " (no .au header)")])
def test_text_renamed_as_audio_gets_an_honest_reason(tmp_path, suffix, reason):
    """libsndfile says 'not a regular file (possibly a pipe?)' for text named .mp3, and reads text
    named .au as headerless 8 kHz mu-law noise."""
    path = tmp_path / f"notes{suffix}"
    path.write_text("hello, this is text\nnot audio at all\n")
    with pytest.raises(AudioError) as caught:
        load_audio(path)
    assert str(caught.value) == f"{path}: not a readable audio file{reason}"


@pytest.mark.parametrize("size", [0xFFFFFFFF, 0x7FFFFFFF, 0])
def test_a_streamed_wav_of_unknown_length_is_read_whole_without_a_warning(tmp_path, caplog, size):
    """arecord and ffmpeg writing to a pipe cannot go back to fill in the data size."""
    path = _wav(tmp_path / "streamed.wav", 3.0)
    whole = load_audio(path)
    _patch(path, 40, "<I", size)  # the data chunk's size
    _patch(path, 4, "<I", 0xFFFFFFFF if size else 36)  # the RIFF size
    with caplog.at_level(logging.WARNING, logger="qwen_asr_edge"):
        got = load_audio(path)
        streamed = np.concatenate(list(read_blocks(path, 16000)))
    np.testing.assert_array_equal(got, whole)
    np.testing.assert_array_equal(streamed, whole)
    assert truncation_warnings(caplog) == []


def test_an_aiff_sox_wrote_to_a_pipe_is_read_whole_without_a_warning(tmp_path, caplog):
    """sox's AIFF to a pipe says 0x7F000000 (+ headers) bytes and 0x3F800000 frames: "until the end"
    (it was called truncated, announcing 66584.6 s)."""
    path = tmp_path / "piped.aiff"
    wav = _wav(tmp_path / "source.wav", 3.0)
    with path.open("wb") as f:  # through cat: sox cannot go back and fill the sizes in
        sox = subprocess.Popen(["sox", str(wav), "-t", "aiff", "-"], stdout=subprocess.PIPE)
        subprocess.run(["cat"], stdin=sox.stdout, stdout=f, check=True)
        sox.stdout.close()
        assert sox.wait() == 0
    assert path.read_bytes()[4:8] == bytes.fromhex("7f000050")  # the FORM size sox leaves
    with caplog.at_level(logging.WARNING, logger="qwen_asr_edge"):
        got = load_audio(path)
    np.testing.assert_array_equal(got, load_audio(wav))
    assert truncation_warnings(caplog) == []


@pytest.mark.parametrize("fmt,suffix", [("AIFF", "aiff"), ("AU", "au"), ("W64", "w64"), ("RF64", "wav")])
def test_truncated_files_of_every_header_format_are_named(tmp_path, caplog, fmt, suffix):
    """As WAV: libsndfile reads what is there and only notes the announced size in its log."""
    path = tmp_path / f"cut.{suffix}"
    sf.write(path, noise_clip(8.0) * 0.5, 16000, format=fmt, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with caplog.at_level(logging.WARNING, logger="qwen_asr_edge"):
        got = load_audio(path)
    assert got.size / 16000 == pytest.approx(4.0, abs=0.1)
    (warning,) = truncation_warnings(caplog)
    assert warning.startswith(f"{path}: truncated: the header announces 8.0 s, the file decodes to 4.0 s")


def test_display_name_is_always_one_printable_line():
    assert display_name("a\nb.wav") == "a\\nb.wav"
    assert display_name("tab\there\rcr.wav") == "tab\\there\\rcr.wav"
    assert display_name("\x1b[31mred\x7f\x00.wav") == "\\x1b[31mred\\x7f\\x00.wav"
    assert display_name("nel\x85sep\u2028.wav") == "nel\\x85sep\\u2028.wav"
    assert display_name(os.fsdecode(b"r\xe9\nunion.wav")) == "r\\xe9\\nunion.wav"
    assert display_name("réunion 東京.wav") == "réunion 東京.wav"  # printable text is kept


def test_errors_about_a_name_with_a_newline_are_one_line(tmp_path):
    path = tmp_path / "two\nlines.wav"
    with pytest.raises(AudioError) as caught:
        load_audio(path)
    assert str(caught.value) == f"{tmp_path}/two\\nlines.wav: no such file"


def test_text_for_the_tokenizer_must_be_utf8():
    """A Latin-1 argument reaches Python as a surrogate escape, which the tokenizer refuses with a
    TypeError: the context and the language are refused where they are checked, before any work."""
    from qwen_asr_edge.runtime import Transcriber, demo_bundle

    bad = os.fsdecode(b"caf\xe9")
    demo = Transcriber(demo_bundle(), providers="cpu")
    assert demo.prompt_ids(1, "café").size
    with pytest.raises(InputError, match="^context is not valid UTF-8 text$"):
        demo.prompt_ids(1, bad)
    with pytest.raises(InputError, match="^the language is not valid UTF-8 text$"):
        demo.prompt_ids(1, "", bad)
    with pytest.raises(InputError, match="^the language is not valid UTF-8 text$"):
        normalize_language(bad, ["English"])

    from qwen_asr_edge.runtime.prompt import checked_text

    assert checked_text("café", "the transcript") == "café"
    with pytest.raises(InputError, match="^the transcript is not valid UTF-8 text$"):
        checked_text(bad, "the transcript")
