"""Any audio input -> float32 mono at the model's sample rate, in [-1, 1]: whole, or a block at a
time for long files.

Files are decoded by soundfile (libsndfile: WAV, FLAC, OGG/Vorbis/Opus, MP3, ...) or, for what
libsndfile cannot read (AAC in .m4a, and the sound of .mp4/.mkv/.webm videos), by PyAV (FFmpeg's
libraries, faster-whisper's choice) from the [media] extra. Channels are averaged, other rates are
resampled with soxr's high-quality mode (what librosa, and so the official package, uses), and a
signal that exceeds full scale is divided by its peak, as the official package does. Integer arrays
passed directly are scaled by their type's full scale. A bare numpy array is taken to be at the
model's rate (16 kHz); pass ``(array, sample_rate)`` otherwise.

Every file is decoded ``BLOCK_SECONDS`` at a time; long files are read by ``read_blocks``, which
mixes down and resamples (soxr's streaming resampler) block by block, so memory does not grow with
the file's length; there the peak is only known per chunk, so ``peak_normalized`` is applied per chunk.

A file that ends before its header says (a cut download, a full disk) is transcribed up to where its
audio ends, the same for every format: the decoded length is what counts, and one warning on the
``qwen_asr_edge`` logger names the file as truncated.
"""

from __future__ import annotations

import itertools
import logging
import numbers
import os
import re
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np
import soundfile as sf
import soxr

from .errors import AudioError, AudioFileNotFoundError, MissingDependencyError, display_name

log = logging.getLogger("qwen_asr_edge")

AudioInput = str | os.PathLike | np.ndarray | tuple[np.ndarray, int]

# What libsndfile reads; a folder yields these and AV_SUFFIXES.
SOUNDFILE_SUFFIXES = {
    ".wav",
    ".flac",
    ".ogg",
    ".oga",
    ".opus",
    ".mp3",
    ".aiff",
    ".aif",
    ".au",
    ".caf",
    ".w64",
}
# What only FFmpeg reads: voice memos (AAC in MP4), videos, Windows Media, raw AAC/AC-3/AMR.
AV_SUFFIXES = {
    ".m4a", ".m4b", ".aac", ".mp4", ".m4v", ".mov", ".3gp", ".mkv", ".mka", ".webm", ".avi", ".wmv",
    ".wma", ".asf", ".flv", ".ts", ".mts", ".ac3", ".amr", ".mp2",
}  # fmt: skip
AUDIO_SUFFIXES = SOUNDFILE_SUFFIXES | AV_SUFFIXES
MEDIA_EXTRA = "media"
BLOCK_SECONDS = 10.0
# A decoded length this much shorter than the header's is not called truncated: lossy codecs'
# priming and padding differ by a few hundredths of a second between encoders and decoders.
TRUNCATION_TOLERANCE_SECONDS = 0.25


class Skipped(NamedTuple):
    """A path ``audio_files`` left out, and why (for a ``note:`` line)."""

    path: Path
    reason: str


def audio_files(
    paths: Iterable[str | os.PathLike], recursive: bool = False
) -> tuple[list[Path], list[Skipped]]:
    """The files to transcribe: paths as given, each folder replaced by the audio and video files in it.

    Files named on the command line are taken whatever their suffix (decoding says if they are not
    audio); in a folder, files whose suffix is not in ``AUDIO_SUFFIXES`` are skipped and reported,
    hidden files and folders (a leading ".") are skipped silently, as ``ls`` and ``find``'s users expect.

    Args:
        paths: files and folders, in the user's order.
        recursive: also walk sub-folders (sorted, depth first); else they are skipped and reported.
            Links to folders are never followed inside a folder (a loop would never end).

    Returns:
        (files in order, the folder entries skipped with a reason each). Names are kept as the
        file system gives them (undecodable bytes as surrogate escapes; see ``display_name``).
    """
    files: list[Path] = []
    skipped: list[Skipped] = []
    for p in map(Path, paths):
        if p.is_dir():
            _walk(p, recursive, files, skipped)
        else:
            files.append(p)
    return files, skipped


def _walk(folder: Path, recursive: bool, files: list[Path], skipped: list[Skipped]) -> None:
    try:
        entries = sorted(e for e in folder.iterdir() if not e.name.startswith("."))
    except OSError as e:
        skipped.append(Skipped(folder, f"cannot be listed ({e.strerror or type(e).__name__})"))
        return
    for entry in entries:
        if entry.is_dir():
            if entry.is_symlink():
                skipped.append(Skipped(entry, "a link to a folder (not followed)"))
            elif recursive:
                _walk(entry, recursive, files, skipped)
            else:
                skipped.append(Skipped(entry, "a folder (pass --recursive to include sub-folders)"))
        elif entry.suffix.lower() in AUDIO_SUFFIXES:
            files.append(entry)
        else:
            kind = f"{entry.suffix} is" if entry.suffix else "files without a suffix are"
            skipped.append(Skipped(entry, f"not an audio or video file ({kind} not read from folders)"))


def describe(audio: AudioInput) -> str:
    """A name for error messages and results: the path (printable, see ``display_name``), or a
    description of the array."""
    if isinstance(audio, (str, os.PathLike)):
        return display_name(audio) or '""'
    arr = audio[0] if isinstance(audio, tuple) and audio else audio
    if not hasattr(arr, "shape"):
        return f"<{type(audio).__name__}>"
    return f"<array {arr.shape}>"


def _checked(path: str | os.PathLike) -> Path:
    """The path, when it names a regular file with something in it.

    A pipe, a device or a socket (``/dev/stdin``, ``<(cat x.flac)``, ``/dev/zero``) is refused
    rather than read: its length is unknown, reading it cannot be repeated (it is read twice: for
    the length, then the samples) and ``/dev/zero`` never ends. The kernel's pseudo-files in /proc
    and /sys say size 0 whatever they hold, so they are named as such, not as empty.
    """
    if not os.fspath(path):  # Path("") is the current folder
        raise AudioError(describe(path), "an empty file name")
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise AudioFileNotFoundError(p) from None
    except OSError as e:
        raise AudioError(p, f"cannot be opened ({e.strerror or type(e).__name__})") from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioError(p, "is a folder, not an audio file")
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "a pipe" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "a device"
        )
        raise AudioError(p, f"is not a regular file ({kind}): save it to a file first")
    if st.st_size == 0:
        if os.path.realpath(p).startswith(("/proc/", "/sys/")):
            raise AudioError(p, "is a kernel pseudo-file (/proc, /sys), not an audio file")
        raise AudioError(p, "file is empty")
    return p


def _detail(e: Exception) -> str:
    return str(e).split(":", 1)[-1].strip() or type(e).__name__


# What libsndfile says when its MP3 decoder (mpg123) finds no frame in a regular file: its text
# is about pipes, which ``_checked`` has ruled out.
_SF_NOT_A_FILE = "File does not exist or is not a regular file"


def _sf_refusal(path: Path, e: Exception) -> AudioError:
    detail = _detail(e)
    if detail.startswith(_SF_NOT_A_FILE):
        if path.suffix.lower() == ".mp3":
            return AudioError(path, "not a readable audio file (no MP3 frames found)")
        return AudioError(path, "not a readable audio file")
    return AudioError(path, f"not a readable audio file ({detail})")


def _fs_name(path: Path) -> str | bytes:
    """The path for libsndfile: soundfile encodes a str strictly, so a name with bytes that are not
    valid in the file system's encoding (surrogate escapes) goes as its original bytes."""
    name = os.fspath(path)
    try:
        name.encode()
    except UnicodeEncodeError:
        return os.fsencode(name)
    return name


# A WAV, AIFF or AU written to a pipe cannot go back to fill in its sizes: ``arecord``, ffmpeg and
# sox leave 0xFFFFFFFF (AU's "unknown size"), 0x7FFFFFFF or 0x7FFFF000 there, and sox's AIFF
# 0x7F000000 plus its chunks' headers, meaning "until the end".
_UNKNOWN_SIZE_MIN = (0x7F000000, 0x7F000FFF), (0x7FFFF000, 0x7FFFFFFF), (0xFFFFF000, 0xFFFFFFFF)


def _unknown_size(size: int) -> bool:
    return any(low <= size <= high for low, high in _UNKNOWN_SIZE_MIN)


# libsndfile's log of a header that announces more than the file holds, in the order trusted:
# a frame count (AIFF's COMM chunk, RF64's ds64), or a byte count and what the file holds, for
# the data (WAV ``data``, AIFF ``SSND``, AU ``Data Size``), else the whole file (W64 ``riff``).
_LOGGED_FRAMES = (
    re.compile(r"Frame count read from 'COMM' chunk \((\d+)\)"),
    re.compile(r"does not match value from 'ds64' chunk of (\d+)"),
)
_LOGGED_SIZES = (
    re.compile(r"^\s*(?:data|SSND|Data Size)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.M),
    re.compile(r"^\s*(?:RIFF|riff|FORM)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.M),
)


def _announced(info: str, frames: int) -> int:
    """Samples per channel the header announces, from libsndfile's log (``frames`` when it notes
    nothing, or an unknown length)."""
    sizes = [(int(m.group(1)), int(m.group(2))) for p in _LOGGED_SIZES if (m := p.search(info))]
    if any(_unknown_size(said) for said, _ in sizes):  # written to a pipe: its frame count is as void
        return frames
    for pattern in _LOGGED_FRAMES:
        if (match := pattern.search(info)) and int(match.group(1)) > frames:
            return int(match.group(1))
    for said, holds in sizes:
        if 0 < holds < said:
            return round(frames * said / holds)
    return frames


_STREAM_SIZES = re.compile(r"^\s*(?:data|SSND|Data Size)\s*:\s*(\d+)", re.M)


def stream_announced(info: str, frames: int) -> int | None:
    """Samples per channel a stream's header announces, or None where it announces no end.

    libsndfile reading a pipe cannot compare the header with the stream's size: ``frames`` is the
    header's word, unchecked. None for no logged data size (``info`` is libsndfile's log), for the
    "until the end" sizes a writer to a pipe leaves (``_unknown_size``), and for libsndfile's own
    "unknown" (2**31 - 1 frames).
    """
    sizes = [int(m.group(1)) for m in _STREAM_SIZES.finditer(info)]
    if not sizes or any(_unknown_size(size) for size in sizes) or frames >= 0x7FFFFFFF:
        return None
    return frames


class _Window:
    """The bytes of a file from ``offset`` on, as a file object (for libsndfile's RAW reader)."""

    def __init__(self, path: Path, offset: int):
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._offset = offset
        self._file.seek(offset)

    def seek(self, pos: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            pos += self._offset
        return self._file.seek(pos, whence) - self._offset

    def tell(self) -> int:
        return self._file.tell() - self._offset

    def read(self, n: int = -1) -> bytes:
        return self._file.read(n)

    def readinto(self, buffer) -> int:
        return self._file.readinto(buffer)

    def close(self) -> None:
        self._file.close()


def _wav_data_offset(path: Path) -> int | None:
    """Where a RIFF/WAVE file's ``data`` chunk's samples begin (None when it has none)."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(head):
        size = int.from_bytes(head[pos + 4 : pos + 8], "little")
        if head[pos : pos + 4] == b"data":
            return pos + 8
        pos += 8 + size + (size & 1)
    return None


class _SoundFileDecoder:
    """A file libsndfile reads: its rate, its length, and its samples as mono blocks.

    Attributes:
        rate: Hz.
        frames: samples per channel the file holds, as far as its header tells.
        announced: samples per channel the header announces (more than ``frames`` for a WAV, AIFF,
            AU, W64 or RF64 cut short, which libsndfile reads silently but notes in its log); the
            same as ``frames`` when the header says the length is unknown (a WAV streamed to a pipe).
        error: why decoding stopped before the end, when a decoder failed (FLAC: "lost sync").
    """

    SALVAGE_FRAMES = 4096  # a FLAC block: what a failing read is retried in

    def __init__(self, path: Path):
        self.path = path
        self._raw: dict | None = None  # how to reopen a streamed WAV: see _unknown_wav_length
        self._file = self._open_file()
        if self._file.format == "RAW":
            # libsndfile reads a .au without its header as 8 kHz mu-law: any file (text, a
            # document) would be transcribed as noise.
            self._file.close()
            raise AudioError(path, f"not a readable audio file (no {path.suffix or 'audio'} header)")
        self.rate = int(self._file.samplerate)
        self.frames = int(self._file.frames)
        self.error: str | None = None
        if self.frames == 0 and self._file.format in ("WAV", "WAVEX"):
            self._unknown_wav_length()
        self.announced = _announced(self._file.extra_info, self.frames)

    def _open_file(self) -> sf.SoundFile:
        try:
            if self._raw is None:
                return sf.SoundFile(_fs_name(self.path))
            return sf.SoundFile(_Window(self.path, self._raw["offset"]), closefd=True, **self._raw["format"])
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
            raise _sf_refusal(self.path, e) from None

    def _unknown_wav_length(self) -> None:
        """A WAV whose data size is 0 (a recorder that streamed it and never came back) but whose
        file goes on: its samples are read as headerless audio, from its data chunk to the end."""
        if not re.search(r"^data\s*:\s*0\s*$", self._file.extra_info, re.M):
            return
        offset = _wav_data_offset(self.path)
        if offset is None or self.path.stat().st_size <= offset:
            return
        f = self._file
        fmt = {"format": "RAW", "subtype": f.subtype, "samplerate": f.samplerate, "channels": f.channels}
        self._raw = {"offset": offset, "format": {**fmt, "endian": "LITTLE"}}
        try:
            raw = self._open_file()
        except AudioError:
            self._raw = None  # a compressed subtype libsndfile cannot read headerless: no samples
            return
        f.close()
        self._file = raw
        self.frames = int(raw.frames)

    def blocks(self, size: int) -> Iterator[np.ndarray]:
        """(n,) float32 mono blocks of ``size`` samples (the last shorter), until the end or an error."""
        done = 0
        try:
            while True:
                data = self._file.read(size, dtype="float32", always_2d=True)
                done += data.shape[0]
                if data.shape[0]:
                    yield mix_down(data)
                if data.shape[0] < size:
                    return
        except (sf.LibsndfileError, RuntimeError) as e:
            self.error = _detail(e)
        # A failing read returns nothing, and libsndfile's state is then broken: read that block
        # again from a fresh handle in small pieces, to keep what precedes the damage.
        yield from self._salvage(done)

    def _salvage(self, start: int) -> Iterator[np.ndarray]:
        try:
            with self._open_file() as f:
                f.seek(start)
                while True:
                    data = f.read(self.SALVAGE_FRAMES, dtype="float32", always_2d=True)
                    if data.shape[0]:
                        yield mix_down(data)
                    if data.shape[0] < self.SALVAGE_FRAMES:
                        return
        except (sf.LibsndfileError, RuntimeError, AudioError):
            return

    def close(self) -> None:
        self._file.close()


def _import_av(path: Path):
    try:
        import av
    except ImportError:
        what = f"{display_name(path)}: reading {path.suffix or 'this'} files"
        raise MissingDependencyError(what, MEDIA_EXTRA) from None
    return av


def has_av() -> bool:
    """Whether PyAV (the [media] extra) can be imported."""
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def _av_detail(e: Exception) -> str:
    """FFmpeg's message without the errno and the file name PyAV appends."""
    if isinstance(e, UnicodeError):  # PyAV decoding text FFmpeg gave it: not the reason to show
        return "text in it is not valid UTF-8"
    return getattr(e, "strerror", None) or _detail(e)


class AvDecoder:
    """A file FFmpeg reads (through PyAV): its first audio stream, with ``_SoundFileDecoder``'s
    attributes. ``announced`` is the stream's duration from the container's index (MP4's moov,
    FLAC's STREAMINFO), or the container's when it holds no video; None when neither says.

    Args:
        path: the file (with ``stream``: the name its messages give).
        refused: libsndfile's refusal, when PyAV is the fallback: the reason given if PyAV cannot
            read it either (PyAV's own, for a WAV with a damaged header, is vaguer).
        stream: a binary file object to read instead of ``path``, which may be a pipe (FLAC, MP3,
            ADTS AAC, Matroska and MPEG-TS decode from one; an MP4 whose index is at its end not).

    Raises:
        MissingDependencyError: PyAV is not installed.
        AudioError: FFmpeg cannot read it, or it has no audio stream.
    """

    def __init__(self, path: Path, refused: AudioError | None = None, stream: BinaryIO | None = None):
        av = self._av = _import_av(path)
        self.path = path
        self.refused = refused
        self.error: str | None = None
        what = "audio" if refused else "audio or video"
        try:
            # Tags that are not UTF-8 (an old tagger's Latin-1 title) do not make the sound unreadable.
            if stream is None:
                self._container = av.open(os.fspath(path), metadata_errors="replace")
            else:  # from a pipe: begin on the first few KB, not after FFmpeg's default 5 MB probe
                self._container = av.open(stream, metadata_errors="replace", options=STREAM_PROBE)
        except (av.error.FFmpegError, OSError, UnicodeError, ValueError) as e:
            raise AudioError(path, f"not a readable {what} file ({_av_detail(e)})") from None
        try:
            self._init_stream()
        except AudioError:
            self._container.close()  # after reading ``streams``: PyAV crashes on a closed container's
            raise
        except (av.error.FFmpegError, OSError, UnicodeError, ValueError) as e:
            self._container.close()
            raise AudioError(path, f"not a readable {what} file ({_av_detail(e)})") from None

    def _init_stream(self) -> None:
        streams = self._container.streams
        if not streams.audio:
            raise AudioError(
                self.path, "a video without sound (no audio stream)" if streams.video else "no audio stream"
            )
        self._stream = streams.audio[0]
        codec = self._stream.codec_context  # None: FFmpeg has no decoder for the stream's format code
        if codec is None:
            raise self.refused or AudioError(self.path, "its audio is in a format FFmpeg cannot decode")
        self.rate = int(codec.sample_rate or 0)
        if self.rate <= 0:
            raise self.refused or AudioError(self.path, "its audio stream has no sample rate")
        seconds = None
        if self._stream.duration and self._stream.time_base:
            seconds = float(self._stream.duration * self._stream.time_base)
        elif self._container.duration and not streams.video:
            seconds = self._container.duration / 1e6  # av.time_base: microseconds
        self.announced = None if seconds is None else round(seconds * self.rate)
        estimate = (self._container.duration or 0) / 1e6 * self.rate
        self.frames = self.announced if self.announced is not None else round(estimate)

    def blocks(self, size: int) -> Iterator[np.ndarray]:
        """As ``_SoundFileDecoder.blocks``: FFmpeg's frames regrouped into blocks of ``size``."""
        resampler = self._av.AudioResampler(format="fltp", rate=self.rate)  # planar float32, layout kept
        pending: list[np.ndarray] = []
        held = 0
        try:
            for frame in itertools.chain(self._container.decode(self._stream), [None]):
                for out in resampler.resample(frame):  # None flushes
                    planes = out.to_ndarray()  # (channels, n)
                    pending.append(planes.mean(axis=0, dtype=np.float32) if len(planes) > 1 else planes[0])
                    held += pending[-1].shape[0]
                    while held >= size:
                        whole = np.concatenate(pending)
                        yield whole[:size]
                        pending, held = [whole[size:]], whole.shape[0] - size
        # ValueError: a frame the resampler refuses (UnicodeDecodeError: text in an FFmpeg message)
        except (self._av.error.FFmpegError, ValueError, OSError) as e:
            self.error = _av_detail(e)
        if held:
            yield np.concatenate(pending)

    def close(self) -> None:
        self._container.close()


# FFmpeg's probe of a pipe: measured with MP3 piped live, the first frame came at once instead of
# after 2 s of audio; FLAC still comes ~2.2 s late (FFmpeg's FLAC parser looks frames ahead).
STREAM_PROBE = {"probesize": "4096", "analyzeduration": "0"}

_Decoder = _SoundFileDecoder | AvDecoder


def _open(path: str | os.PathLike) -> _Decoder:
    """The decoder for a file: PyAV for AV_SUFFIXES (libsndfile when PyAV is not installed and the
    file is one it reads), else libsndfile, else PyAV when installed.

    Raises:
        AudioError: missing, a folder, empty, or neither decoder can read it.
        MissingDependencyError: it needs PyAV, which is not installed.
    """
    p = _checked(path)
    if p.suffix.lower() in AV_SUFFIXES:
        try:
            return AvDecoder(p)
        except MissingDependencyError as missing:
            try:  # a WAV or FLAC saved under a video's or a memo's suffix needs no FFmpeg
                return _SoundFileDecoder(p)
            except AudioError:
                raise missing from None
    try:
        return _SoundFileDecoder(p)
    except AudioError as refused:
        if not has_av():
            raise
        first = refused
    try:  # a format libsndfile lacks behind a common suffix (AAC in .wav, FLAC in .ogg, ...)
        return AvDecoder(p, refused=first)
    except AudioError:
        raise first from None


def _decoded(path: Path, decoder: _Decoder) -> Iterator[np.ndarray]:
    """The decoder's mono blocks at its own rate, ``BLOCK_SECONDS`` each; at the end, the length is
    checked against the header (see ``_check_length``)."""
    count = 0
    try:
        for block in decoder.blocks(max(1, int(BLOCK_SECONDS * decoder.rate))):
            count += block.shape[0]
            yield check_finite(block, path)
    finally:
        decoder.close()
    _check_length(path, decoder, count)


def _check_length(path: Path, decoder: _Decoder, count: int) -> None:
    """Nothing decoded is an error; less than the header announces is transcribed and named as
    truncated in one warning; a decoder error that truncation does not explain is an error.

    Raises:
        AudioError: no samples, or a decoder error before the end the header announces was unknown.
    """
    rate = decoder.rate
    if count == 0:
        if getattr(decoder, "refused", None) is not None:  # PyAV, after libsndfile: its reason stands
            raise decoder.refused
        raise AudioError(
            path, f"not a readable audio file ({decoder.error})" if decoder.error else "contains no samples"
        )
    if decoder.announced is not None and decoder.announced - count > TRUNCATION_TOLERANCE_SECONDS * rate:
        log.warning(
            "%s: truncated: the header announces %.1f s, the file decodes to %.1f s; "
            "transcribed what is there",
            display_name(path),
            decoder.announced / rate,
            count / rate,
        )
    elif decoder.error:
        raise AudioError(path, f"cannot be decoded after {count / rate:.1f} s ({decoder.error})")


def duration(path: str | os.PathLike) -> float:
    """Seconds of audio in a file, as its header tells (the decoded length may be shorter: see
    ``read_blocks``).

    Raises:
        AudioError: missing, a folder, empty, not audio, or no samples.
        MissingDependencyError: the file needs PyAV ([media] extra), which is not installed.
    """
    decoder = _open(path)
    decoder.close()
    if decoder.frames <= 0:
        raise AudioError(path, "contains no samples")
    return decoder.frames / decoder.rate


def read_file(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """((N,) float32 mono samples, sample rate in Hz) of a whole file, decoded to where its audio ends.

    Raises:
        AudioError: missing, a folder, empty, not audio, no samples, NaN, or a decoder error.
        MissingDependencyError: the file needs PyAV ([media] extra), which is not installed.
    """
    p = Path(path)
    decoder = _open(p)
    return np.concatenate(list(_decoded(p, decoder))), decoder.rate


def to_mono(data: np.ndarray, source: str) -> np.ndarray:
    """(N,), (N, C) or (C, N) with C <= 8 -> (N,) float32, channels averaged."""
    if data.ndim == 1:
        return data
    if data.ndim != 2:
        raise AudioError(source, f"expected 1 or 2 dimensions, got shape {data.shape}")
    # (channels, samples) when the first axis is small and the second is not, else (samples, channels)
    if data.shape[0] <= 8 and data.shape[1] > data.shape[0]:
        data = data.T
    return mix_down(data)


def mix_down(frames: np.ndarray) -> np.ndarray:
    """(N, channels) -> (N,) float32, the channels averaged."""
    return frames.mean(axis=1, dtype=np.float32) if frames.shape[1] > 1 else frames[:, 0]


# Sample rates taken from a caller: audio is at least telephone-band and at most what any
# interface records (a rate of 1 Hz would make seconds into hours of work).
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 1_000_000


def check_rate(rate, source: str | os.PathLike) -> int:
    """``rate`` as an int, if it is a whole number of Hz within [1 kHz, 1 MHz] (22050.0 is).

    Raises:
        AudioError: not a whole number (a bool, a str, 22050.5) or out of that range.
    """
    if (
        isinstance(rate, (bool, np.bool_))
        or not isinstance(rate, numbers.Real)
        or not float(rate).is_integer()
    ):
        raise AudioError(source, f"invalid sample rate {rate!r} (a whole number of Hz)")
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(
            source, f"invalid sample rate {rate} Hz (from {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz)"
        )
    return int(rate)


def pcm_to_float(data: np.ndarray, source: str | os.PathLike) -> np.ndarray:
    """Samples as float32 in [-1, 1]: signed integers divided by their type's full scale
    (int16 by 32768), unsigned ones (8-bit WAV's offset binary) centred first; floats kept.

    Raises:
        AudioError: not a numeric sample type.
    """
    if np.issubdtype(data.dtype, np.signedinteger):
        return data.astype(np.float32) / float(-np.iinfo(data.dtype).min)
    if np.issubdtype(data.dtype, np.unsignedinteger):
        half = float(np.iinfo(data.dtype).max // 2 + 1)
        return (data.astype(np.float64) - half).astype(np.float32) / np.float32(half)
    if not np.issubdtype(data.dtype, np.floating):
        raise AudioError(source, f"samples of type {data.dtype} are not audio")
    return data


def check_finite(wav: np.ndarray, source: str | os.PathLike) -> np.ndarray:
    if not np.isfinite(wav).all():
        raise AudioError(source, "contains NaN or infinite samples")
    return wav


def peak_normalized(wav: np.ndarray) -> np.ndarray:
    """Divided by its peak when that exceeds full scale (as the official package), clipped to [-1, 1]."""
    peak = float(np.max(np.abs(wav))) if wav.size else 0.0
    if peak <= 1.0:
        return wav
    return np.clip(wav / peak, -1.0, 1.0)


def load_audio(audio: AudioInput, sample_rate: int = 16000) -> np.ndarray:
    """Decode, mix down, resample and range-normalise one input.

    Args:
        audio: A path, an array at ``sample_rate`` ((N,), (N, C) or (C, N); float or int), or
            ``(array, rate)``.
        sample_rate: The rate to return, in Hz.

    Returns:
        (N,) float32 samples in [-1, 1] at ``sample_rate``.

    Raises:
        AudioError: the file cannot be read, or the samples are empty, NaN or not audio.
        MissingDependencyError: the file needs PyAV ([media] extra), which is not installed.
    """
    source = describe(audio)
    if isinstance(audio, (str, os.PathLike)):
        data, rate = read_file(audio)
    elif isinstance(audio, tuple) and len(audio) == 2:
        data, rate = np.asarray(audio[0]), _sample_rate(audio[1], source)
    elif isinstance(audio, np.ndarray):
        data, rate = audio, sample_rate
    else:
        raise AudioError(source, f"unsupported audio input of type {type(audio).__name__}")
    if rate <= 0:
        raise AudioError(source, f"invalid sample rate {rate}")

    data = pcm_to_float(data, source)
    wav = np.ascontiguousarray(to_mono(np.asarray(data, dtype=np.float32), source))
    if wav.size == 0:
        raise AudioError(source, "contains no samples")
    check_finite(wav, source)
    if rate != sample_rate:
        wav = soxr.resample(wav, rate, sample_rate, quality="HQ").astype(np.float32, copy=False)
    return peak_normalized(wav)


def _sample_rate(rate: object, source: str) -> int:
    """The rate of an ``(array, rate)`` input, in Hz: a whole number.

    Raises:
        AudioError: a rate of another type; a tuple in the order (rate, array), as
            ``scipy.io.wavfile.read`` returns it, is said to be so.
    """
    if isinstance(rate, (np.ndarray, list)) and np.ndim(rate) > 0:
        raise AudioError(source, "give (samples, sample_rate): this is (sample_rate, samples), the order "
                         "scipy.io.wavfile.read returns")  # fmt: skip
    if isinstance(rate, (bool, np.bool_)) or not isinstance(rate, numbers.Real):
        raise AudioError(source, f"the sample rate must be a whole number of Hz; got a {type(rate).__name__}")
    if not float(rate).is_integer():
        raise AudioError(source, f"the sample rate must be a whole number of Hz; got {rate}")
    return int(rate)


def read_blocks(path: str | os.PathLike, sample_rate: int) -> BlockReader:
    """A file as consecutive (n,) float32 mono blocks at ``sample_rate``: see ``BlockReader``."""
    return BlockReader(path, sample_rate)


class BlockReader:
    """A file as consecutive (n,) float32 mono blocks at ``sample_rate``, ``BLOCK_SECONDS`` each,
    not peak-normalised (see ``peak_normalized``); iterating decodes it (lazily, once).

    Args:
        path: the file.
        sample_rate: Hz to resample to (soxr's streaming resampler, HQ).

    Attributes:
        samples: samples yielded so far; after the last block, the decoded length, which is what a
            transcript reports (a truncated file's header announces more: see ``_check_length``).

    Raises (while iterating):
        AudioError: as ``read_file``.
        MissingDependencyError: the file needs PyAV ([media] extra), which is not installed.
    """

    def __init__(self, path: str | os.PathLike, sample_rate: int):
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.samples = 0

    @property
    def seconds(self) -> float:
        """The decoded length so far, in seconds."""
        return self.samples / self.sample_rate

    def __iter__(self) -> Iterator[np.ndarray]:
        decoder = _open(self.path)
        resampler = None
        if decoder.rate != self.sample_rate:
            resampler = soxr.ResampleStream(decoder.rate, self.sample_rate, 1, dtype="float32", quality="HQ")
        for block in _decoded(self.path, decoder):
            yield self._counted(block if resampler is None else resampler.resample_chunk(block))
        if resampler is not None:
            yield self._counted(resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True))

    def _counted(self, block: np.ndarray) -> np.ndarray:
        self.samples += block.shape[0]
        return block
