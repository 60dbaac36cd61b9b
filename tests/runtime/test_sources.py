"""Where live audio comes from (runtime/sources.py): what libsndfile reads from a pipe, and what it
misreads there and is refused by name; headerless PCM; blocks given as they arrive; files paced as
if live. Pipes are real (FIFOs written by a thread); the audio is real speech."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import soundfile as sf

from qwen_asr_edge.runtime.audio import read_file
from qwen_asr_edge.runtime.errors import AudioError, AudioFileNotFoundError, InputError
from qwen_asr_edge.runtime.sources import (
    ARECORD_FORMATS,
    RAW_FORMATS,
    RawFormat,
    file_blocks,
    is_stream,
    open_stream,
    raw_encoding,
    rechunk,
)
from tests.support import truncation_warnings


@pytest.fixture(scope="module")
def speech(speech_files) -> tuple[np.ndarray, int]:
    """A real recording: (N,) float32, 16 kHz."""
    data, rate = sf.read(speech_files[0], dtype="float32")
    return data, rate


def sox(path, *args: str) -> bytes:
    """The file as sox writes it to a pipe (``sox path ARGS -``)."""
    return subprocess.run(["sox", str(path), *args, "-"], capture_output=True, check=True).stdout


def through_fifo(tmp_path, data: bytes, raw: RawFormat | None = None) -> tuple[np.ndarray, int]:
    """``data`` written into a FIFO by another thread, read back by a StreamSource: (samples, rate)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def write():
        with open(fifo, "wb") as f:  # blocks until the source opens the FIFO
            f.write(data)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    source = open_stream(fifo, raw)
    blocks = list(source)
    writer.join(timeout=10)
    return (np.concatenate(blocks) if blocks else np.zeros(0, np.float32)), source.rate


@pytest.mark.parametrize(
    "args",
    [
        ("-t", "wav"),
        ("-t", "wav", "-e", "floating-point", "-b", "32"),
        ("-t", "wav", "-b", "24"),  # WAVE_FORMAT_EXTENSIBLE
        ("-t", "aiff"),
        ("-t", "au"),
    ],
    ids=["wav", "wav-float", "wavex-24", "aiff", "au"],
)
def test_lossless_formats_from_a_pipe_give_the_file_s_samples(tmp_path, speech_files, speech, args):
    got, rate = through_fifo(tmp_path, sox(speech_files[0], *args))
    assert rate == speech[1]
    np.testing.assert_allclose(got, speech[0], atol=1e-4)  # 24-bit and float hold the same 16-bit samples


def test_a_wav_of_unknown_length_and_stereo_at_another_rate(tmp_path, speech_files, speech, caplog):
    """What `arecord` or a sox reading from a pipe writes: a WAV header that cannot say its length."""
    unknown = subprocess.run(
        f"sox {speech_files[0]} -t s16 - | sox -t s16 -r 16000 -c 1 - -t wav -",
        shell=True, capture_output=True, check=True,
    ).stdout  # fmt: skip
    assert unknown[40:44] != (2 * len(speech[0])).to_bytes(4, "little")  # the header really says no length
    with caplog.at_level(logging.WARNING, logger="qwen_asr_edge"):
        got, _ = through_fifo(tmp_path, unknown)
    np.testing.assert_allclose(got, speech[0], atol=1e-6)
    assert not truncation_warnings(caplog)  # no length said: nothing is short of it
    os.remove(tmp_path / "fifo")
    stereo, rate = through_fifo(tmp_path, sox(speech_files[0], "-t", "wav", "-c", "2", "-r", "44100"))
    assert rate == 44100 and stereo.ndim == 1  # channels averaged; the session resamples
    assert abs(stereo.shape[0] - round(speech[0].shape[0] * 44100 / 16000)) <= 1


@pytest.mark.parametrize("fmt", ["wav", "aiff", "au"])
def test_a_stream_cut_short_is_named_as_truncated_once(tmp_path, speech, fmt, caplog):
    """A header that announces more than comes (a cut download piped in, a writer that died):
    what came is read, and one warning says so, as for a truncated file; whole, no warning."""
    buffer = io.BytesIO()
    sf.write(buffer, *speech, format=fmt.upper(), subtype="PCM_16")  # its sizes filled in: a file piped
    data = buffer.getvalue()
    seconds = speech[0].shape[0] / speech[1]
    with caplog.at_level(logging.WARNING, logger="qwen_asr_edge"):
        whole, _ = through_fifo(tmp_path, data)
    assert whole.shape[0] == speech[0].shape[0] and not truncation_warnings(caplog)
    os.remove(tmp_path / "fifo")
    with caplog.at_level(logging.WARNING, logger="qwen_asr_edge"):
        got, rate = through_fifo(tmp_path, data[: len(data) // 2])
    assert 0 < got.shape[0] < whole.shape[0] // 2 + rate
    assert truncation_warnings(caplog) == [
        f"{tmp_path / 'fifo'}: truncated: the header announces {seconds:.1f} s, the stream ended after "
        f"{got.shape[0] / rate:.1f} s; transcribed what came"
    ]


@pytest.mark.parametrize("subtype", ["VORBIS", "OPUS"])
def test_ogg_from_a_pipe(tmp_path, speech, subtype):
    buffer = io.BytesIO()
    sf.write(buffer, *speech, format="OGG", subtype=subtype)
    got, rate = through_fifo(tmp_path, buffer.getvalue())
    assert rate == 16000 and abs(got.shape[0] - speech[0].shape[0]) <= 1
    assert np.corrcoef(got[: speech[0].shape[0]], speech[0][: got.shape[0]])[0, 1] > 0.9  # lossy, same sound


def _encoded(speech, fmt: str) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, *speech, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda s: _encoded(s, "FLAC"), "stdin: FLAC cannot be read from a pipe: pipe WAV, AIFF, AU or OGG"),
        (lambda s: _encoded(s, "MP3"), "stdin: MP3 cannot be read from a pipe"),
        (lambda s: _encoded(s, "CAF"), "stdin: CAF cannot be read from a pipe"),
        (lambda s: _encoded(s, "W64"), "stdin: W64 cannot be read from a pipe"),
        (lambda s: b"hello, this is text\n", "stdin: not audio that can be read from a pipe: pipe WAV"),
        (lambda s: b"", "stdin: is empty (no audio came)"),
    ],
    ids=["flac", "mp3", "caf", "w64", "text", "empty"],
)
def test_what_libsndfile_misreads_from_a_pipe_is_refused_by_name(monkeypatch, speech, make, message):
    """Measured with libsndfile 1.2.2: FLAC "lost sync", CAF gave no samples, W64 read its trailing
    chunk as audio, MP3 decoded with errors; without PyAV these are refused, before libsndfile sees
    them, saying that the [media] extra reads them."""
    monkeypatch.setitem(sys.modules, "av", None)  # import av now raises ImportError
    read_end, write_end = os.pipe()
    data = make(speech)

    def write():
        with contextlib.suppress(BrokenPipeError), open(write_end, "wb") as f:  # the source stops early
            f.write(data)

    threading.Thread(target=write, daemon=True).start()
    with open(read_end, "rb") as stdin:
        monkeypatch.setattr("sys.stdin", stdin)
        with pytest.raises(AudioError) as refused:
            list(open_stream("-"))
    assert str(refused.value).startswith(message)
    assert "\n" not in str(refused.value)
    if message != "stdin: is empty (no audio came)":
        assert str(refused.value).endswith("; the [media] extra reads more formats from a pipe")


@pytest.mark.parametrize("fmt", ["FLAC", "MP3", "W64", "CAF"])
def test_with_pyav_what_libsndfile_misreads_from_a_pipe_is_read_by_ffmpeg(tmp_path, speech, fmt):
    """FFmpeg reads these from a pipe as they come, FLAC and W64 to the sample; not CAF."""
    pytest.importorskip("av")
    if fmt == "CAF":
        with pytest.raises(AudioError, match="CAF cannot be read from a pipe: pipe WAV.*or give a file$"):
            through_fifo(tmp_path, _encoded(speech, fmt))
        return
    got, rate = through_fifo(tmp_path, _encoded(speech, fmt))
    assert rate == 16000
    if fmt == "MP3":  # lossy, and its encoder's delay shifts it
        assert abs(got.shape[0] - speech[0].shape[0]) < 3000 and np.abs(got).max() > 0.1
    else:
        np.testing.assert_allclose(got, speech[0], atol=1 / 32768)


@pytest.mark.parametrize("encoding", ["s16le", "s16be", "s32le", "f32le", "f64be"])
def test_headerless_pcm(tmp_path, speech, encoding):
    ints = np.round(speech[0] * 32768).astype(np.int16)
    kind = encoding[0]
    order = "<" if encoding.endswith("le") else ">"
    bits = int(encoding[1:3])
    if kind == "s":
        data = (ints.astype(np.int32) << (bits - 16)).astype(f"{order}i{bits // 8}").tobytes()
    else:
        data = (ints / 32768).astype(f"{order}f{bits // 8}").tobytes()
    got, rate = through_fifo(tmp_path, data, RawFormat(encoding, 16000, 1))
    assert rate == 16000
    np.testing.assert_array_equal(got, ints / np.float32(32768))


def test_headerless_pcm_with_channels_is_mixed_down(tmp_path):
    frames = np.array([[1000, 3000], [-2000, 2000]] * 800, dtype="<i2")
    got, rate = through_fifo(tmp_path, frames.tobytes(), RawFormat("s16le", 8000, 2))
    assert rate == 8000
    np.testing.assert_allclose(got, frames.mean(axis=1) / 32768)


def test_files_joined_with_cat_are_said_to_be_read_only_to_the_first_s_end(tmp_path, speech_files, caplog):
    """`cat a.wav b.wav | transcribe -` transcribed a.wav alone and said nothing."""
    one = sox(speech_files[0], "-t", "wav")
    for data, said in ((one + sox(speech_files[1], "-t", "wav"), True), (one + bytes(200), False)):
        caplog.clear()
        (tmp_path / str(said)).mkdir()
        got, _ = through_fifo(tmp_path / str(said), data)
        assert got.shape[0] == sf.info(speech_files[0]).frames
        warned = [r.getMessage() for r in caplog.records if "more audio follows" in r.getMessage()]
        assert len(warned) == int(said), warned


@pytest.mark.parametrize(("args", "kind"), [(("-t", "wav"), "WAV"), (("-t", "aiff"), "AIFF")])
def test_a_header_given_raw_is_refused(tmp_path, speech_files, args, kind):
    """A WAV piped with --raw-format was read as samples: its header as noise, its rate ignored."""
    with pytest.raises(AudioError, match=f"has a {kind} header: leave out --raw-format"):
        through_fifo(tmp_path, sox(speech_files[0], *args), RawFormat("s16le", 16000, 1))
    # raw PCM that happens to begin with an MPEG sync word (two samples of -1) is still PCM
    (tmp_path / "pcm").mkdir()
    got, _ = through_fifo(tmp_path / "pcm", b"\xff\xff" * 8000, RawFormat("s16le", 16000, 1))
    assert got.shape == (8000,)


def test_raw_formats_are_checked():
    assert {"s16le", "s32le", "f32le"} <= set(RAW_FORMATS)
    assert set(ARECORD_FORMATS.values()) <= set(RAW_FORMATS)
    assert [raw_encoding(n) for n in ("S16_LE", "s16_le", "F32LE", "S24_3LE")] == [
        "s16le",
        "s16le",
        "f32le",
        "s24le",
    ]
    for bad, word in (
        (dict(encoding="s17le"), "s17le"),
        (dict(sample_rate=0), "--sample-rate"),
        (dict(channels=0), "--channels"),
    ):
        with pytest.raises(InputError, match=word):
            RawFormat(**bad)


def test_blocks_are_given_as_they_arrive(tmp_path, speech_files):
    """The first second is read, in blocks, while the writer still holds the rest back."""
    data = sox(speech_files[0], "-t", "wav")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    first_second = 44 + 32000  # the header, then 1 s of 16-bit samples
    release = threading.Event()

    def write():
        with open(fifo, "wb", buffering=0) as f:
            f.write(data[:first_second])
            release.wait(timeout=30)
            f.write(data[first_second:])

    threading.Thread(target=write, daemon=True).start()
    source = open_stream(fifo, block_seconds=0.25)
    blocks = iter(source)
    early = [next(blocks) for _ in range(4)]  # 4 x 0.25 s: would hang if reads waited for the end
    assert not release.is_set() and sum(b.shape[0] for b in early) == 16000
    release.set()
    rest = list(blocks)
    assert source.samples == sf.info(speech_files[0]).frames == sum(b.shape[0] for b in early + rest)


def test_mp3_blocks_are_given_as_they_arrive(tmp_path, speech):
    """Through FFmpeg too: its default probe read 5 MB (or to the end) before the first frame, and
    a buffered pipe reader waited for whole 32 KB reads."""
    pytest.importorskip("av")
    data = _encoded(speech, "MP3")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    release, gave_up = threading.Event(), threading.Event()

    def write():
        with open(fifo, "wb", buffering=0) as f:
            f.write(data[: len(data) // 2])
            if not release.wait(timeout=10):
                gave_up.set()
            f.write(data[len(data) // 2 :])

    threading.Thread(target=write, daemon=True).start()
    blocks = iter(open_stream(fifo, block_seconds=0.25))
    next(blocks)  # came only once the writer gave up waiting, if the decoder read ahead to the end
    assert not gave_up.is_set()
    release.set()
    assert list(blocks)


def test_a_missing_fifo_and_a_terminal(tmp_path, monkeypatch):
    with pytest.raises(AudioFileNotFoundError, match="no such file"):
        list(open_stream(tmp_path / "gone"))
    leader, follower = os.openpty()
    with open(follower, "rb") as tty:
        monkeypatch.setattr("sys.stdin", tty)
        with pytest.raises(AudioError, match="stdin: is a terminal: pipe audio into standard input"):
            list(open_stream("-"))
    os.close(leader)


def test_streams_are_stdin_fifos_and_devices(tmp_path, speech_files):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert is_stream("-") and is_stream(fifo) and is_stream("/dev/null")
    assert not is_stream(speech_files[0]) and not is_stream(tmp_path) and not is_stream(tmp_path / "gone")


def test_rechunk():
    blocks = [np.arange(0, 5), np.arange(5, 6), np.arange(6, 17)]
    out = list(rechunk(blocks, 4))
    assert [b.tolist() for b in out] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15], [16]]


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.mark.parametrize("speed", [1.0, 2.0, 0.0])
def test_file_blocks_are_paced_as_if_live(speech_files, speed):
    fake = FakeClock()
    times, blocks = [], []
    for block in file_blocks(speech_files[0], 0.5, speed, clock=fake.clock, sleep=fake.sleep):
        times.append(fake.now - 100.0)
        blocks.append(block)
    whole, rate = read_file(speech_files[0])
    assert rate == 16000 and all(b.dtype == np.float32 for b in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks), whole)
    assert [b.shape[0] for b in blocks[:-1]] == [8000] * (len(blocks) - 1)
    if speed:  # each block once its audio has been "heard"
        ends = np.cumsum([b.shape[0] for b in blocks]) / 16000 / speed
        np.testing.assert_allclose(times, ends)
    else:
        assert fake.sleeps == []


def test_file_blocks_refuse_a_bad_speed(speech_files):
    for bad in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="speed"):
            next(file_blocks(speech_files[0], speed=bad))


def test_a_character_device_of_headerless_pcm_is_read_as_it_comes():
    """/dev/zero with --raw-format gave no samples (libsndfile took the device for an empty file)."""
    from qwen_asr_edge.runtime.sources import RawFormat, open_stream

    stream = open_stream("/dev/zero", RawFormat("s16le", 16000, 1))
    got = 0
    for block in stream:
        assert not block.any()
        got += block.shape[0]
        if got >= 3 * 16000:
            break
    assert got >= 3 * 16000
