"""Where live audio comes from, a block at a time, for ``StreamingSession.feed``.

    open_stream("-")                   standard input, a FIFO or a character device, read as it arrives
    file_blocks("talk.wav", speed=1)   a file paced as if it were live (tests, benchmarks, --simulate-live)
    Microphone(device=None)            an input device through PortAudio (the [mic] extra: sounddevice)

A stream is decoded by libsndfile from its file descriptor, which it reads as a pipe: WAV, AIFF,
AU and OGG (Vorbis, Opus) work so, their header read once and the samples as they come. FLAC,
MP3, CAF and W64 do not (measured with libsndfile 1.2.2: FLAC fails with "lost sync", CAF gives
no samples, W64 reads its trailing chunks as audio, MP3 decodes with errors), so the first bytes
are looked at: with PyAV (the [media] extra) FFmpeg decodes those, and whatever else it reads from
a pipe (AAC, Matroska, WebM, MPEG-TS), as they come; without it they are refused by name (and CAF,
which FFmpeg cannot read from a pipe either, always). Headerless PCM is read with ``RawFormat``.

The reads block until a block's samples have arrived, and libsndfile retries a read that a
signal interrupts, so they run in a thread of their own: the caller waits on a queue, where
Ctrl-C (KeyboardInterrupt) reaches it at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .audio import (
    MAX_SAMPLE_RATE,
    MEDIA_EXTRA,
    MIN_SAMPLE_RATE,
    TRUNCATION_TOLERANCE_SECONDS,
    AvDecoder,
    has_av,
    mix_down,
    read_blocks,
    stream_announced,
)
from .errors import AudioError, AudioFileNotFoundError, InputError, MissingDependencyError, display_name

log = logging.getLogger("qwen_asr_edge")

# Blocks small enough that text follows speech closely; the session steps every 2 s whatever they are.
STREAM_BLOCK_SECONDS = 0.2
STDIN = "-"
STDIN_NAME = "stdin"
MIC_EXTRA = "mic"
# --raw-format names (ffmpeg's and sox's) -> libsndfile's RAW subtype and byte order.
RAW_FORMATS: dict[str, tuple[str, str]] = {
    "s8": ("PCM_S8", "FILE"),
    "u8": ("PCM_U8", "FILE"),
    "s16le": ("PCM_16", "LITTLE"),
    "s16be": ("PCM_16", "BIG"),
    "s24le": ("PCM_24", "LITTLE"),
    "s24be": ("PCM_24", "BIG"),
    "s32le": ("PCM_32", "LITTLE"),
    "s32be": ("PCM_32", "BIG"),
    "f32le": ("FLOAT", "LITTLE"),
    "f32be": ("FLOAT", "BIG"),
    "f64le": ("DOUBLE", "LITTLE"),
    "f64be": ("DOUBLE", "BIG"),
    "mulaw": ("ULAW", "FILE"),
    "alaw": ("ALAW", "FILE"),
}
# arecord's (ALSA's) names for the same encodings; its S24_LE is 24 bits in 4 bytes, not ours.
ARECORD_FORMATS = {
    "S8": "s8", "U8": "u8", "S16_LE": "s16le", "S16_BE": "s16be", "S24_3LE": "s24le",
    "S24_3BE": "s24be", "S32_LE": "s32le", "S32_BE": "s32be", "FLOAT_LE": "f32le",
    "FLOAT_BE": "f32be", "FLOAT64_LE": "f64le", "FLOAT64_BE": "f64be", "MU_LAW": "mulaw",
    "A_LAW": "alaw",
}  # fmt: skip
PIPEABLE = "WAV, AIFF, AU or OGG (Vorbis, Opus), or headerless PCM with --raw-format"
# Blocks read ahead of the session: past this the reader waits, and so does the writer of a pipe.
QUEUE_BLOCKS = 64
# How often a wait on the queue wakes (only to stay responsive; the data wakes it at once).
POLL_SECONDS = 0.5


def raw_encoding(name: str) -> str:
    """A ``RAW_FORMATS`` key from ours (any case) or arecord's spelling (``S16_LE``)."""
    return ARECORD_FORMATS.get(name.upper(), name.lower())


@dataclass(frozen=True)
class RawFormat:
    """Headerless PCM: how its samples are stored.

    Attributes:
        encoding: A key of ``RAW_FORMATS`` (``s16le``, ``f32le``, ...).
        sample_rate: Hz.
        channels: Interleaved channels (averaged into one).

    Raises:
        InputError: an unknown encoding, a rate or channel count that is not positive.
    """

    encoding: str = "s16le"
    sample_rate: int = 16000
    channels: int = 1

    def __post_init__(self):
        if self.encoding not in RAW_FORMATS:
            raise InputError(f"--raw-format {self.encoding!r} is not one of {', '.join(RAW_FORMATS)}")
        if not MIN_SAMPLE_RATE <= self.sample_rate <= MAX_SAMPLE_RATE:
            raise InputError(
                f"--sample-rate must be {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz; got {self.sample_rate}"
            )
        if not 1 <= self.channels <= 64:
            raise InputError(f"--channels must be between 1 and 64, got {self.channels}")

    def soundfile_args(self) -> dict:
        subtype, endian = RAW_FORMATS[self.encoding]
        return {
            "format": "RAW",
            "subtype": subtype,
            "endian": endian,
            "samplerate": self.sample_rate,
            "channels": self.channels,
        }


def is_stream(path: str | os.PathLike) -> bool:
    """Whether an input is read as a stream: ``-`` (standard input), a FIFO or a character device
    (links followed: ``/dev/stdin`` is a stream when standard input is a pipe)."""
    if os.fspath(path) == STDIN:
        return True
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def stream_name(path: str | os.PathLike) -> str:
    """The name errors and results give a stream: ``stdin`` for ``-``, else the path (printable)."""
    return STDIN_NAME if os.fspath(path) == STDIN else display_name(path)


class _End:
    """What the reader puts on the queue after the last block."""


class StreamSource:
    """An audio stream read as it arrives, in blocks of about ``block_seconds``.

    Iterate it once: it yields (n,) float32 mono blocks at ``rate`` (the stream's own rate, known
    once its header is read, i.e. before the first block is yielded); the last block may be
    shorter. Reading happens in a daemon thread that starts with the iteration; a FIFO with no
    writer yet is waited for, as ``cat`` waits.

    Args:
        path: ``-`` for standard input, or a FIFO or character device.
        raw: The samples' format when the stream has no header; None reads a header.
        block_seconds: Seconds per block.

    Attributes:
        name: ``stdin`` or the path, for messages.
        rate: Hz (None until the header is read).
        samples: Samples per channel yielded so far.
        announced: Samples per channel the header announces (None until it is read, and for raw
            PCM or a header written to a pipe, which announces no end). A stream that ends more
            than ``TRUNCATION_TOLERANCE_SECONDS`` short of it is named as truncated in one warning
            on the ``qwen_asr_edge`` logger, as a truncated file is.

    Raises (while iterating):
        AudioFileNotFoundError: no such FIFO or device.
        AudioError: it cannot be opened, is a terminal, is empty, is in a format that cannot be read
            from a pipe (the message says which can), or fails to decode.
        InputError: standard input is closed.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        raw: RawFormat | None = None,
        block_seconds: float = STREAM_BLOCK_SECONDS,
    ):
        if not block_seconds > 0:
            raise ValueError(f"block_seconds must be positive, got {block_seconds}")
        self.path = os.fspath(path)
        self.name = stream_name(path)
        self.raw = raw
        self.block_seconds = block_seconds
        self.rate: int | None = None
        self.samples = 0
        self.announced: int | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_BLOCKS)
        self._started = False
        self._followed = False  # more audio came after the end of the first recording's data

    @property
    def seconds(self) -> float:
        """Seconds of audio yielded so far."""
        return self.samples / self.rate if self.rate else 0.0

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._started:
            raise RuntimeError(f"{self.name} is read once")
        self._started = True
        threading.Thread(target=self._read, name=f"read {self.name}", daemon=True).start()
        while True:
            item = self._get()
            if isinstance(item, _End):
                self._check_length()
                return
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, int):  # the header's rate, before the first block
                self.rate = item
                continue
            self.samples += item.shape[0]
            yield item

    def _check_length(self) -> None:
        if self._followed:  # `cat a.wav b.wav |`: libsndfile stops at the end of the first's data
            log.warning(
                "%s: more audio follows the end of the first recording (files joined with cat?); only "
                "the first was transcribed (to join files: sox a.wav b.wav -t wav - | ...)",
                self.name,
            )
        if self.announced is None or self.rate is None:
            return
        if self.announced - self.samples > TRUNCATION_TOLERANCE_SECONDS * self.rate:
            log.warning(
                "%s: truncated: the header announces %.1f s, the stream ended after %.1f s; "
                "transcribed what came",
                self.name,
                self.announced / self.rate,
                self.samples / self.rate,
            )

    def _get(self):
        while True:  # a wait with a timeout, so that Ctrl-C is never held up
            with contextlib.suppress(queue.Empty):
                return self._queue.get(timeout=POLL_SECONDS)

    # -- the reader thread ----------------------------------------------------------------------

    def _read(self) -> None:
        fd = None
        try:
            fd, ffmpeg = self._open()
            if ffmpeg:
                self._read_ffmpeg(fd)
            else:
                self._read_libsndfile(fd)
        except BaseException as e:  # handed to the consumer, which raises it
            self._queue.put(e)
        finally:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._queue.put(_End())

    def _read_libsndfile(self, fd: int) -> None:
        with self._soundfile(fd) as f:
            if self.raw is None:
                self.announced = stream_announced(f.extra_info, f.frames)
            self._queue.put(int(f.samplerate))  # after `announced`: the queue orders the two
            size = max(1, round(self.block_seconds * f.samplerate))
            done = 0
            while True:
                try:
                    data = f.read(size, dtype="float32", always_2d=True)
                except (sf.LibsndfileError, RuntimeError) as e:
                    seconds = done / f.samplerate
                    raise AudioError(self.name, f"cannot be decoded after {seconds:.1f} s ({e})") from None
                if not data.shape[0]:  # a pipe's reads block until a block is there, or the end
                    break
                done += data.shape[0]
                self._queue.put(mix_down(data))
            if self.raw is None:
                self._followed = _bytes_after(fd) > TRAILING_BYTES

    def _read_ffmpeg(self, fd: int) -> None:
        """A format libsndfile cannot read from a pipe, decoded by FFmpeg (PyAV) as it comes. No
        ``announced``: a pipe's MP3 length is FFmpeg's estimate from the bit rate."""
        # Unbuffered: a read gives what has come (a buffered one waits until its size is there).
        with os.fdopen(fd, "rb", buffering=0, closefd=False) as stream:
            decoder = AvDecoder(Path(self.name), stream=stream)
            try:
                self._queue.put(decoder.rate)
                done = 0
                for block in decoder.blocks(max(1, round(self.block_seconds * decoder.rate))):
                    done += block.shape[0]
                    self._queue.put(block)
                if decoder.error:
                    seconds = done / decoder.rate
                    raise AudioError(self.name, f"cannot be decoded after {seconds:.1f} s ({decoder.error})")
            finally:
                decoder.close()

    def _open(self) -> tuple[int, bool]:
        """The file descriptor to read, a relay of the stream whose first bytes were checked
        (``_pipe_reader``; for raw PCM, that some came), and whether FFmpeg is to read it."""
        fd = self._open_fd()
        ffmpeg = False
        try:
            if os.isatty(fd):
                what = "standard input" if self.path == STDIN else "it"
                raise AudioError(
                    self.name, f"is a terminal: pipe audio into {what} (sox in.wav -t wav - | ...)"
                )
            head = _read_head(fd, self.name)
            if self.raw is None:
                ffmpeg = _pipe_reader(head, self.name) == "ffmpeg"
            elif not head:
                raise AudioError(self.name, "is empty (no audio came)")
            elif kind := _header_kind(head):  # read as samples, its header would be noise and its rate lost
                raise AudioError(
                    self.name, f"has a {kind} header: leave out --raw-format (raw is for headerless PCM)"
                )
            # Raw PCM goes through the relay too: libsndfile takes a character device (/dev/zero)
            # for an empty file, where a pipe it reads until the end.
        except BaseException:
            os.close(fd)
            raise
        return _relay(fd, head), ffmpeg  # which owns fd from now on

    def _soundfile(self, fd: int) -> sf.SoundFile:
        args = self.raw.soundfile_args() if self.raw is not None else {}
        try:
            return sf.SoundFile(fd, closefd=False, **args)
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
            detail = str(e).split(":", 1)[-1].strip() or type(e).__name__
            raise AudioError(self.name, f"not readable audio ({detail}); pipe {PIPEABLE}") from None

    def _open_fd(self) -> int:
        if self.path == STDIN:
            if sys.stdin is None:
                raise InputError("standard input is closed: pipe audio into it, or give a file")
            return os.dup(sys.stdin.fileno())  # ours to close, standard input stays open
        try:
            return os.open(self.path, os.O_RDONLY)  # a FIFO: waits for a writer, as cat does
        except FileNotFoundError:
            raise AudioFileNotFoundError(self.path) from None
        except OSError as e:
            raise AudioError(self.name, f"cannot be opened ({e.strerror or type(e).__name__})") from None


# Headers known by their first bytes: (bytes 0-4, bytes 8-12 or None) -> format. libsndfile reads
# the first four kinds from a pipe; the others it misreads there (module docstring).
_HEADERS = (
    ((b"RIFF", b"WAVE"), "WAV"),
    ((b"RIFX", b"WAVE"), "WAV"),
    ((b"RF64", b"WAVE"), "WAV"),
    ((b"FORM", b"AIFF"), "AIFF"),
    ((b"FORM", b"AIFC"), "AIFF"),
    ((b".snd", None), "AU"),
    ((b"dns.", None), "AU"),
    ((b"OggS", None), "OGG"),
    ((b"fLaC", None), "FLAC"),
    ((b"ID3", None), "MP3"),
    ((b"caff", None), "CAF"),
    ((b"riff", None), "W64"),
)
_PIPEABLE_KINDS = ("WAV", "AIFF", "AU", "OGG")
HEAD_BYTES = 12


def _read_head(fd: int, name: str) -> bytes:
    """The first ``HEAD_BYTES`` bytes of a stream (fewer only at its end)."""
    head = b""
    while len(head) < HEAD_BYTES:
        try:
            chunk = os.read(fd, HEAD_BYTES - len(head))
        except OSError as e:
            raise AudioError(name, f"cannot be read ({e.strerror or type(e).__name__})") from None
        if not chunk:
            break
        head += chunk
    return head


def _header_kind(head: bytes) -> str | None:
    """The format whose header ``head`` begins with, when it is one of ``_HEADERS``."""
    for (start, form), kind in _HEADERS:
        if head.startswith(start) and (form is None or head[8:12] == form):
            return kind
    return None


# More than this after a recording's data is not a trailing metadata chunk (LIST, id3: far smaller)
# but more audio, as `cat a.wav b.wav |` sends; libsndfile reads ahead, so a second header may be
# gone already and only the count tells.
TRAILING_BYTES = 4096


def _bytes_after(fd: int, seconds: float = 0.2) -> int:
    """How many bytes come in ``fd`` (up to a little over ``TRAILING_BYTES``), each read waiting at
    most ``seconds``: a writer that holds its pipe open after the recording is not waited for."""
    count = 0
    try:
        while count <= TRAILING_BYTES and select.select([fd], [], [], seconds)[0]:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            count += len(chunk)
    except (OSError, ValueError):
        pass
    return count


def _pipe_reader(head: bytes, name: str) -> str:
    """Who reads a stream that begins with ``head``: "libsndfile" for the formats it reads from a
    pipe, "ffmpeg" for the rest when PyAV (the [media] extra) is installed.

    Raises:
        AudioError: empty; without PyAV, a format libsndfile misreads from a pipe, or not one it
            reads there.
    """
    if not head:
        raise AudioError(name, "is empty (no audio came)")
    kind = _header_kind(head)
    if kind in _PIPEABLE_KINDS:
        return "libsndfile"
    av = has_av()
    if av and kind != "CAF":  # nor can FFmpeg 8 (PyAV 18's) read a CAF from a pipe (measured)
        return "ffmpeg"
    if kind is None and len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        kind = "MP3"  # an MPEG audio frame's sync bits, without an ID3 tag (raw PCM may begin so too)
    extra = "" if av else f"; the [{MEDIA_EXTRA}] extra reads more formats from a pipe"
    if kind:
        raise AudioError(name, f"{kind} cannot be read from a pipe: pipe {PIPEABLE}, or give a file{extra}")
    raise AudioError(name, f"not audio that can be read from a pipe: pipe {PIPEABLE}{extra}")


def _relay(fd: int, head: bytes) -> int:
    """A pipe that gives ``head`` and then the rest of ``fd`` (closed at its end): libsndfile reads
    a pipe by its file descriptor, and the bytes read to recognise the format cannot be put back.

    Returns:
        The read end (the caller's to close; the copying thread stops when it is closed).
    """
    read_end, write_end = os.pipe()

    def copy() -> None:
        try:
            data = head
            while data:
                view = memoryview(data)
                while view:
                    view = view[os.write(write_end, view) :]
                data = os.read(fd, 1 << 16)
        except OSError:  # the reader closed its end (it stopped early), or fd failed: an end either way
            pass
        finally:
            os.close(write_end)
            os.close(fd)

    threading.Thread(target=copy, name="relay", daemon=True).start()
    return read_end


def open_stream(
    path: str | os.PathLike, raw: RawFormat | None = None, block_seconds: float = STREAM_BLOCK_SECONDS
) -> StreamSource:
    """Standard input (``-``), a FIFO or a character device as blocks: see ``StreamSource``."""
    return StreamSource(path, raw, block_seconds)


def rechunk(blocks: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """(n,) blocks of any sizes -> blocks of ``size`` samples (the last one shorter, if any)."""
    pending: list[np.ndarray] = []
    held = 0
    for block in blocks:
        pending.append(block)
        held += block.shape[0]
        if held < size:
            continue
        whole = np.concatenate(pending)
        cut = held - held % size
        yield from np.split(whole[:cut], cut // size)
        pending, held = [whole[cut:]], held - cut
    if held:
        yield np.concatenate(pending)


def file_blocks(
    path: str | os.PathLike,
    block_seconds: float = STREAM_BLOCK_SECONDS,
    speed: float = 1.0,
    sample_rate: int = 16000,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[np.ndarray]:
    """A file as if it were live: blocks of ``block_seconds``, each given when it would have been
    heard (at ``speed`` times real time), for ``StreamingSession.feed``.

    Args:
        path: Any file ``audio.read_blocks`` reads (decoded lazily, ``audio.BLOCK_SECONDS`` at a time).
        block_seconds: Seconds per block (the last one shorter).
        speed: 1 real time, 2 twice as fast, 0 as fast as the file decodes.
        sample_rate: Hz of the blocks (the file is resampled to it).
        clock, sleep: The time source (tests replace them).

    Yields:
        (n,) float32 mono blocks at ``sample_rate``; block k is yielded once the time its audio
        ends has passed (``(k + 1) * block_seconds / speed`` after the first was asked for).

    Raises:
        ValueError: ``block_seconds`` not positive, or ``speed`` negative or not finite.
        AudioError, MissingDependencyError: as ``audio.read_blocks`` (while iterating).
    """
    if not block_seconds > 0:
        raise ValueError(f"block_seconds must be positive, got {block_seconds}")
    if not (speed >= 0 and np.isfinite(speed)):
        raise ValueError(f"speed must be 0 (as fast as possible) or a positive number, got {speed}")
    size = max(1, round(block_seconds * sample_rate))
    start, sent = clock(), 0
    for block in rechunk(read_blocks(path, sample_rate), size):
        sent += block.shape[0]
        if speed:
            wait = start + sent / sample_rate / speed - clock()
            if wait > 0:
                sleep(wait)
        yield block


# -- microphones (the [mic] extra) ------------------------------------------------------------------


def import_sounddevice():
    """The sounddevice module.

    Raises:
        MissingDependencyError: it is not installed (the [mic] extra).
        InputError: the PortAudio library it needs is missing.
    """
    try:
        import sounddevice
    except ImportError:
        raise MissingDependencyError("listening to a microphone", MIC_EXTRA) from None
    except OSError:  # sounddevice loads PortAudio on import; Linux wheels do not bundle it
        raise InputError(
            "listening needs the PortAudio library, which is not installed: apt-get install libportaudio2 "
            "(Debian, Ubuntu), dnf install portaudio (Fedora)"
        ) from None
    return sounddevice


def list_devices() -> str:
    """PortAudio's devices as sounddevice lists them (``>`` marks the default input), or a line
    saying there are none.

    Raises:
        MissingDependencyError, InputError: as ``import_sounddevice``.
    """
    sd = import_sounddevice()
    devices = sd.query_devices()
    return str(devices) if len(devices) else "no audio devices (PortAudio finds none)"


def _device(text: str | None) -> int | str | None:
    """--device: an index, or a part of a device's name."""
    if text is None:
        return None
    return int(text) if text.strip().isdigit() else text


class Microphone:
    """An input device's audio as blocks, through sounddevice's InputStream (PortAudio).

        with Microphone() as mic:
            for block in mic:              # (n,) float32 at mic.rate, forever
                session.feed(block, mic.rate)

    Args:
        device: An index or a part of a name (``--device``); None: the default input device.
        block_seconds: Seconds per block.

    Attributes:
        name: The device's name.
        rate: Hz: 16000 when the device takes it, else its default rate (the session resamples).
        overflows: Blocks the device reported as overflowed (samples lost because we fell behind).

    Raises:
        MissingDependencyError: sounddevice is not installed (the [mic] extra).
        InputError: PortAudio is missing, there is no input device, or none matches ``device``.
    """

    def __init__(self, device: str | int | None = None, block_seconds: float = STREAM_BLOCK_SECONDS):
        self._sd = sd = import_sounddevice()
        wanted = _device(device) if isinstance(device, str) else device
        try:
            info = sd.query_devices(wanted, kind="input")
        except (ValueError, sd.PortAudioError) as e:
            if wanted is None:
                raise InputError(f"no input device to listen to ({e}); --list-devices lists them") from None
            raise InputError(f"--device {device}: {e}; --list-devices lists them") from None
        if info["max_input_channels"] < 1:
            raise InputError(f"--device {device}: {info['name']} has no input channels")
        self.device = wanted if wanted is not None else info["index"]
        self.name = str(info["name"])
        self.rate = 16000
        try:
            sd.check_input_settings(self.device, channels=1, dtype="float32", samplerate=16000)
        except (ValueError, sd.PortAudioError):
            self.rate = int(info["default_samplerate"])
        self.block_seconds = block_seconds
        self.overflows = 0
        self._queue: queue.Queue = queue.Queue()
        self._stream = None

    def __enter__(self) -> Microphone:
        sd = self._sd
        try:
            self._stream = sd.InputStream(
                device=self.device,
                channels=1,
                dtype="float32",
                samplerate=self.rate,
                blocksize=max(1, round(self.block_seconds * self.rate)),
                callback=self._callback,
            )
            self._stream.start()
        except (ValueError, sd.PortAudioError) as e:
            raise InputError(f"{self.name}: cannot be opened for listening ({e})") from None
        return self

    def __exit__(self, *exc) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None

    def _callback(self, indata: np.ndarray, frames: int, time_info, status) -> None:
        # PortAudio's thread: copy (indata is reused) and return at once.
        if status and status.input_overflow:
            self.overflows += 1
        self._queue.put(indata[:, 0].copy())

    def __iter__(self) -> Iterator[np.ndarray]:
        """(n,) float32 blocks at ``rate``, as the device delivers them, until the stream stops."""
        while self._stream is not None:
            with contextlib.suppress(queue.Empty):
                yield self._queue.get(timeout=POLL_SECONDS)
            if self._stream is not None and not self._stream.active and self._queue.empty():
                return  # the device went away (unplugged) or the stream was stopped
