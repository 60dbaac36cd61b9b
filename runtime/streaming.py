"""Live transcription: audio fed in blocks, committed and tentative text out after every step.

The algorithm is the official streaming one (``Qwen3ASRModel.streaming_transcribe``, spec §7),
which the official package runs only on vLLM. Every ``chunk_seconds`` (2 s) of new audio is one
step: the model hears all the audio of the utterance so far, and its answer is forced to begin
with its previous answer minus the last ``unfixed_tokens`` (5) tokens (more while that would
split a UTF-8 character), except in the first ``unfixed_chunks`` (2) steps, which start afresh.
``finish()`` decodes the tail the same way.

Two additions make the text usable live, and both modes (below) apply them alike:

* **Committed text.** The official algorithm can rewrite anything it said; a caption must not.
  A token is committed once ``stable_steps`` (2) consecutive answers agree on everything up to
  it (cut back to a word boundary in each of them, and never inside ``language X<asr_text>``);
  from then on the forced prefix never rolls back past it. Past the first steps each answer begins with the
  prefix it was forced to, so this commits what the official algorithm already holds fixed, and
  the rolled-back tail once the model has written it again unchanged (at a pause, all of it). The
  rest is tentative. With ``stable_steps=None`` nothing is committed before the end of an
  utterance and the steps are exactly the official ones.
* **Utterances.** When an utterance reaches ``max_utterance_seconds`` (30 s), it is cut at the
  quietest 100 ms of its last 5 s (as the official long-audio cutter picks a cut), decoded up to
  there with its committed text as the prefix, and committed whole; the audio after the cut
  starts the next utterance, whose context ends with the last ``context_tokens`` of what was
  committed. Memory and the cost of a step are then bounded for a stream of any length.

Modes, which give the same tokens (tests/runtime/test_streaming.py):

* ``"reference"``: every step recomputes everything (log-mel, the encoder on all the utterance's
  audio, the decoder's prefill of the whole prompt), as the official code does.
* ``"bounded"`` (default): the encoder's completed 8 s windows are kept (encoder_windows.py) and
  so is the decoder's KV cache of the prompt's unchanged start (system turn, context, the audio of
  completed windows; decoding.KeptPrefix); a step computes the open window and what follows it.
  A bundle whose encoder attends over the whole clip (``--encoder-attention full``) has no
  completed windows: it streams in the reference mode, with a warning.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .audio import check_finite, check_rate, mix_down, pcm_to_float
from .chunking import quiet_cut
from .decoding import KeptPrefix
from .encoder_windows import EncoderWindows
from .errors import AudioError
from .options import TranscriptionOptions
from .parsing import ASR_TEXT_TAG, parse_transcript, strip_control_tokens
from .repetition import DEFAULT_GUARD, RepetitionGuard
from .results import Timings
from .text import join_texts, separator, written_without_spaces

log = logging.getLogger("qwen_asr_edge")

MODES = ("bounded", "reference")
# The cut of a long utterance is searched for in its last seconds, 100 ms windows (the official cutter's).
CUT_SEARCH_SECONDS = 5.0
CUT_WINDOW_SECONDS = 0.1
MAX_CHANNELS = 64  # more than any capture device gives: a larger second axis is a (channels, n) array


@dataclass(frozen=True)
class StreamingOptions:
    """Options of ``Transcriber.stream``.

    Attributes:
        chunk_seconds: One step per this much new audio (official ``chunk_size_sec``).
        unfixed_chunks: Steps at the start of an utterance decoded without a prefix (official
            ``unfixed_chunk_num``).
        unfixed_tokens: Tokens of the previous answer rolled back for the next prefix (official
            ``unfixed_token_num``).
        stable_steps: Consecutive answers that must agree on a token before it is committed;
            None commits only at the end of an utterance (the official algorithm exactly).
        mode: "bounded" (cached encoder windows and decoder prefix) or "reference" (recompute
            everything each step); the same tokens.
        max_utterance_seconds: Cut and commit an utterance this long (see the module docstring);
            None never cuts (the cost of a step then grows with the stream, as the official's).
        context_tokens: Tokens of committed text carried into the next utterance's context.
        max_new_tokens: Cap on the tokens one step generates, its stop id included; None: the
            offline cap for the utterance's length (TranscriptionOptions.token_cap).
        repetition_guard: Stop a step's decoding as soon as the answer (its forced prefix
            included) ends in a loop (repetition.py); None: off, as the official algorithm.

    Raises:
        ValueError: a value out of range (a step that is not a positive number of seconds, an
            unknown mode, an utterance limit under 10 s, twice the cut search, or under two steps).
    """

    chunk_seconds: float = 2.0
    unfixed_chunks: int = 2
    unfixed_tokens: int = 5
    stable_steps: int | None = 2
    mode: str = "bounded"
    max_utterance_seconds: float | None = 30.0
    context_tokens: int = 16
    max_new_tokens: int | None = None
    repetition_guard: RepetitionGuard | None = DEFAULT_GUARD

    def __post_init__(self):
        if isinstance(self.chunk_seconds, bool) or not isinstance(self.chunk_seconds, (int, float)):
            raise ValueError(f"chunk_seconds must be a number of seconds, got {self.chunk_seconds!r}")
        if not (self.chunk_seconds > 0 and math.isfinite(self.chunk_seconds)):
            raise ValueError(f"chunk_seconds must be a positive number of seconds, got {self.chunk_seconds}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.unfixed_chunks < 0 or self.unfixed_tokens < 0 or self.context_tokens < 0:
            raise ValueError("unfixed_chunks, unfixed_tokens and context_tokens must be at least 0")
        if self.stable_steps is not None and self.stable_steps < 1:
            raise ValueError("stable_steps must be at least 1, or None")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        if not (self.repetition_guard is None or isinstance(self.repetition_guard, RepetitionGuard)):
            raise ValueError(
                f"repetition_guard must be a RepetitionGuard or None; got {self.repetition_guard!r}"
            )
        shortest = max(2 * CUT_SEARCH_SECONDS, 2 * self.chunk_seconds)
        if self.max_utterance_seconds is not None and not (
            self.max_utterance_seconds >= shortest and math.isfinite(self.max_utterance_seconds)
        ):
            raise ValueError(
                f"max_utterance_seconds must be at least {shortest:g} s, or None; "
                f"got {self.max_utterance_seconds}"
            )


@dataclass(frozen=True)
class StreamUpdate:
    """The state of a stream's text after one step.

    Attributes:
        committed: All committed text of the stream; it never changes afterwards, only grows.
        tentative: What follows it for now (may change or vanish); ``committed + tentative`` is
            the whole current text, so it starts with the space that separates it, if any.
        language: The current utterance's language ("" until the model names one, or when it
            heard no speech); the forced one when forced.
        end: Seconds of stream audio this update covers, from the stream's start.
        new_committed: What this update appended to ``committed``.
        is_final: True for ``finish()``'s update only (``tentative`` is then "").
        compute_seconds: Wall time of this update's work (log-mel, encoder, decoder).
        timings: The encoder, prefill and decode-step times within it.
    """

    committed: str
    tentative: str
    language: str
    end: float
    new_committed: str = ""
    is_final: bool = False
    compute_seconds: float = 0.0
    timings: Timings | None = None

    @property
    def text(self) -> str:
        return self.committed + self.tentative


class StreamingSession:
    """One live stream on a Transcriber (``Transcriber.stream``); sessions are independent, so
    several can run on one Transcriber (one thread each). Not thread-safe itself."""

    def __init__(self, transcriber, language: str | None, context: str, options: StreamingOptions):
        self._asr = transcriber
        self.options = options
        self.language = language
        self.context = context
        self.sample_rate = transcriber.sample_rate
        self.mode = options.mode
        if self.mode == "bounded" and transcriber.bundle.manifest.encoder.attention != "windowed":
            log.warning(
                "%s: its encoder attends over the whole clip (no completed windows to keep), so it "
                "streams in the reference mode, whose steps grow with the utterance",
                transcriber.bundle.path,
            )
            self.mode = "reference"
        bounded = self.mode == "bounded"
        self._windows = EncoderWindows(transcriber) if bounded else None
        self._kept = KeptPrefix(transcriber.bundle.manifest.tokens.audio_pad) if bounded else None
        if self._kept is not None and options.max_utterance_seconds is not None:
            self._kept.reserve = self._positions(options.max_utterance_seconds + options.chunk_seconds)
        self._step_samples = max(1, round(options.chunk_seconds * self.sample_rate))
        self._pending = np.zeros(0, np.float32)  # fed samples not yet in a step
        self._resampler = None
        self._rate: int | None = None
        self._heard = 0  # samples of the stream in steps so far
        self._done: list[str] = []  # texts of the finished utterances
        self._spoken: dict[str, int] = {}  # language -> samples of the finished utterances in it
        self._committed = ""
        self._reported = ""  # the committed text the last update showed
        self._closed = False
        self._start_utterance(np.zeros(0, np.float32), context)

    def _positions(self, seconds: float) -> int:
        """KV positions a step of an utterance ``seconds`` long may need, with room for twice the
        text of fast speech (8 tokens a second), so a stream allocates its cache once."""
        asr, spec = self._asr, self._asr.bundle.manifest.encoder
        chunks = math.ceil(seconds * asr.sample_rate / asr.bundle.manifest.mel.hop_length / spec.chunk_frames)
        # The template, the context and the committed text a later utterance carries in it.
        template = len(asr.prompt_ids(0, self.context, self.language)) + self.options.context_tokens + 1
        return template + chunks * spec.tokens_per_chunk + 8 * math.ceil(seconds) + self._cap(seconds)

    def _cap(self, seconds: float) -> int:
        """Tokens one step may generate: ``max_new_tokens``, else the offline cap of the
        utterance's length (TranscriptionOptions.token_cap)."""
        return self.options.max_new_tokens or self._asr.token_cap(seconds, TranscriptionOptions())

    # -- input ------------------------------------------------------------------------------------

    def feed(self, samples: np.ndarray, sample_rate: int | None = None) -> list[StreamUpdate]:
        """Add audio; returns one update per step it completes (often none).

        Args:
            samples: (n,) or (n, C) (channels averaged); float in [-1, 1] or integer PCM
                (scaled by its type's range). Any n, 0 included.
            sample_rate: Of ``samples``, in Hz, 1 kHz to 1 MHz; resampled as they come (soxr's
                stream resampler). One rate per stream; default: the rate given before, else 16000.

        Raises:
            AudioError: NaN or infinite samples, a bad shape or sample type, a rate out of range
                or that changed mid-stream.
            RuntimeError: the session is finished.
        """
        if self._closed:
            raise RuntimeError("this stream is finished; start another with Transcriber.stream()")
        rate = sample_rate if sample_rate is not None else (self._rate or self.sample_rate)
        wav = self._to_16k(np.asarray(samples), rate, last=False)
        # Always a copy: audio callbacks (sounddevice's) hand over a buffer they then reuse.
        self._pending = np.concatenate([self._pending, wav])
        updates = []
        while self._pending.shape[0] >= self._step_samples:
            chunk, self._pending = self._pending[: self._step_samples], self._pending[self._step_samples :]
            updates.append(self._step(chunk))
        return updates

    def finish(self) -> StreamUpdate:
        """Decode what is left (the official ``finish_streaming_transcribe``) and commit all of it.

        Returns:
            The final update (``is_final``; ``committed`` holds the whole transcript;
            ``language`` the one spoken longest, by utterance).

        Raises:
            RuntimeError: the session is already finished.
        """
        if self._closed:
            raise RuntimeError("this stream is finished; start another with Transcriber.stream()")
        start = time.perf_counter()
        if self._resampler is not None:
            tail = self._to_16k(np.zeros(0, np.float32), self._rate, last=True)
            self._pending = np.concatenate([self._pending, tail])
        timings = None
        if self._pending.size:
            self._heard += self._pending.shape[0]
            self._audio = np.concatenate([self._audio, self._pending])
            self._pending = np.zeros(0, np.float32)
            if self._audio.shape[0] >= self._asr._mel.min_samples():  # else no frame to hear
                timings = self._decode(self._audio, self._prefix(final=True))
        self._end_utterance(self._audio.shape[0])
        self._closed = True
        return self._update(start, timings, is_final=True)

    def updates(self, blocks: Iterable[np.ndarray | tuple[np.ndarray, int]], sample_rate: int | None = None):
        """Feed ``blocks`` (arrays at ``sample_rate``, or ``(array, rate)`` pairs) and yield every
        update, ``finish()``'s last."""
        for block in blocks:
            if isinstance(block, tuple):
                yield from self.feed(*block)
            else:
                yield from self.feed(block, sample_rate)
        yield self.finish()

    def _to_16k(self, data: np.ndarray, rate: int, last: bool) -> np.ndarray:
        """Mono float32 at 16 kHz, ints scaled by their range as ``load_audio`` scales them and
        floats kept as they are (the official streaming code does not normalise)."""
        if self._rate is None:
            self._rate = check_rate(rate, "stream")
            if self._rate != self.sample_rate:
                import soxr

                self._resampler = soxr.ResampleStream(self._rate, self.sample_rate, 1, dtype="float32")
        elif rate != self._rate:
            raise AudioError("stream", f"the sample rate changed from {self._rate} to {rate} Hz mid-stream")
        data = np.asarray(pcm_to_float(data, "stream"), np.float32)
        # (n, C), as soundfile and sounddevice give blocks; (C, n) would be ambiguous in short ones.
        if data.ndim == 2:
            if not 1 <= data.shape[1] <= MAX_CHANNELS:
                raise AudioError(
                    "stream",
                    f"a block of shape {data.shape} has {data.shape[1]} channels: blocks are (samples, "
                    f"channels) with 1 to {MAX_CHANNELS} channels (transpose a (channels, samples) array)",
                )
            data = mix_down(data)
        elif data.ndim != 1:
            raise AudioError("stream", f"expected blocks of shape (n,) or (n, channels), got {data.shape}")
        wav = check_finite(data, "stream")
        if self._resampler is not None:
            wav = self._resampler.resample_chunk(np.ascontiguousarray(wav), last=last)
        return np.ascontiguousarray(wav, dtype=np.float32)

    # -- one utterance ----------------------------------------------------------------------------

    def _start_utterance(self, audio: np.ndarray, context: str) -> None:
        self._audio = audio
        self._utterance_context = context
        self._chunk_id = 0
        self._raw = ""
        self._committed_raw = ""
        self._answers: deque[list[int]] = deque(maxlen=self.options.stable_steps or 1)
        if self._windows is not None:
            self._windows.reset()

    def _step(self, chunk: np.ndarray) -> StreamUpdate:
        start = time.perf_counter()
        self._heard += chunk.shape[0]
        self._audio = np.concatenate([self._audio, chunk])
        limit = self.options.max_utterance_seconds
        if limit is not None and self._audio.shape[0] >= limit * self.sample_rate:
            return self._update(start, self._cut())
        timings = None
        if self._audio.shape[0] >= self._asr._mel.min_samples():
            timings = self._decode(self._audio, self._prefix(final=False))
            self._chunk_id += 1
            self._commit_stable()
        return self._update(start, timings)

    def _prefix(self, final: bool) -> str:
        """The official prefix rule, never rolled back past the committed text."""
        tokenizer = self._asr.tokenizer
        prefix = ""
        if self._chunk_id >= self.options.unfixed_chunks and self._raw:
            ids = tokenizer.encode(self._raw)
            k = self.options.unfixed_tokens
            if final:  # the official finish keeps at least one token and does not check U+FFFD
                prefix = tokenizer.decode(ids[: max(1, len(ids) - k)], skip_special_tokens=False)
            else:  # roll back further while the prefix would end inside a UTF-8 character
                end = max(0, len(ids) - k)
                prefix = tokenizer.decode(ids[:end], skip_special_tokens=False)
                while end and "\ufffd" in prefix:
                    end -= 1
                    prefix = tokenizer.decode(ids[:end], skip_special_tokens=False)
        if len(prefix) < len(self._committed_raw):
            prefix = self._committed_raw
        return prefix

    def _decode(self, audio: np.ndarray, prefix: str) -> Timings:
        """One decode of the utterance's ``audio`` with the answer forced to start with ``prefix``;
        sets the raw answer (prefix + generated text)."""
        asr = self._asr
        started = time.perf_counter()
        features, lengths = asr.features([audio])
        if self._windows is not None:
            embeds = self._windows.encode(features[0, :, : int(lengths[0])])[None]
            audio_len = np.array([embeds.shape[1]], dtype=np.int64)
        else:
            encoding = asr.encode_features(features, lengths)
            embeds, audio_len = encoding.values, encoding.lengths
        encoder_seconds = time.perf_counter() - started
        prompt = asr.prompt_ids(int(audio_len[0]), self._utterance_context, self.language, prefix)
        cap = self._cap(audio.shape[0] / self.sample_rate)
        generation = asr._greedy.generate(
            [prompt],
            embeds,
            audio_len,
            [cap],
            language=asr._language_probe,
            kept=self._kept,
            repetition_guard=self.options.repetition_guard,
            history=[asr.tokenizer.encode(prefix)],  # a loop may have begun in the forced prefix
        )
        tokens = [t for t in generation.tokens[0] if t not in asr.bundle.manifest.tokens.eos]
        self._raw = prefix + asr.tokenizer.decode(tokens)
        return Timings([encoder_seconds], [generation.prefill_seconds], generation.step_seconds)

    def _commit_stable(self) -> None:
        """Commit what the last ``stable_steps`` answers agree on (module docstring)."""
        steps = self.options.stable_steps
        if steps is None:
            return
        tokenizer = self._asr.tokenizer
        ids = tokenizer.encode(self._raw)
        self._answers.append(ids)
        if len(self._answers) < steps:
            return
        n = min(len(a) for a in self._answers)
        agreed = 0
        while agreed < n and all(a[agreed] == ids[agreed] for a in self._answers):
            agreed += 1
        begin = self._text_start(ids)
        if begin is None:
            return
        # Between words in every answer: "for 1" is agreed by "for 10 minutes" and "for 1 degrees",
        # but ends a word only in the second.
        while agreed > begin and not all(self._word_boundary(a, agreed) for a in self._answers):
            agreed -= 1
        if agreed <= begin:
            return
        candidate = tokenizer.decode(ids[:agreed], skip_special_tokens=False)
        if "\ufffd" in candidate or len(candidate) <= len(self._committed_raw):
            return
        if candidate.startswith(self._committed_raw):
            self._committed_raw = candidate
            self._commit(self._stream_text(candidate))

    def _text_start(self, ids: list[int]) -> int | None:
        """Index of the first text token: after ``<asr_text>``, or 0 when the language is forced
        (the prompt holds the tag); None while the model has not reached the text."""
        if self.language:
            return 0
        tag = self._asr.bundle.manifest.tokens.asr_text
        return ids.index(tag) + 1 if tag in ids else None

    def _word_boundary(self, ids: list[int], at: int) -> bool:
        """Whether a cut before ``ids[at]`` falls between words (or there is nothing after it)."""
        if at >= len(ids):
            return True
        decode = self._asr.tokenizer.decode
        before, after = decode(ids[at - 1 : at]), decode(ids[at : at + 1])
        if not after or not before:
            return True
        return (
            after[0].isspace()
            or not after[0].isalnum()
            or not before[-1].isalnum()
            or written_without_spaces(before[-1])
            or written_without_spaces(after[0])
        )

    def _cut(self) -> Timings:
        """End the utterance at its quietest 100 ms near the end (module docstring)."""
        audio, rate = self._audio, self.sample_rate
        lo = max(self._asr._mel.min_samples(), audio.shape[0] - round(CUT_SEARCH_SECONDS * rate))
        cut = quiet_cut(audio, lo, audio.shape[0], round(CUT_WINDOW_SECONDS * rate))
        timings = self._decode(audio[:cut], self._committed_raw)
        tail = self._end_utterance(cut)
        context = join_texts([self.context, tail]) if self.context else tail
        self._start_utterance(audio[cut:], context)
        return timings

    def _end_utterance(self, samples: int) -> str:
        """Commit the whole utterance (``samples`` long); returns the tail of its text carried as
        context."""
        text = self._parsed(self._raw)
        language = self.language or parse_transcript(self._raw, None, markup=self._asr._markup).language
        if language and text:
            self._spoken[language] = self._spoken.get(language, 0) + samples
        self._commit(self._stream_text(self._raw))
        self._done.append(text)
        ids = self._asr.tokenizer.encode(text)
        k = self.options.context_tokens
        tail = self._asr.tokenizer.decode(ids[-k:]) if k and ids else ""
        return tail.lstrip("\ufffd").strip()

    # -- text -------------------------------------------------------------------------------------

    def _parsed(self, raw: str) -> str:
        return parse_transcript(raw, self.language, markup=self._asr._markup).text

    def _stream_text(self, raw: str) -> str:
        """The stream's text with this utterance's answer being ``raw``."""
        return join_texts([*self._done, self._parsed(raw)])

    def _commit(self, text: str) -> None:
        """Make ``text`` the committed text, appending only: what was committed stays."""
        if text.startswith(self._committed):
            self._committed = text
            return
        # The parse of a longer answer no longer starts with what was committed (the official
        # repetition fix collapsed a run across the old end, say): append what is new in the raw.
        new = self._uncommitted_raw().strip()
        if new:
            self._committed += separator(self._committed, new) + new if self._committed else new

    def _uncommitted_raw(self) -> str:
        """The answer past its committed part, without control markup."""
        tail = strip_control_tokens(self._raw[len(self._committed_raw) :], self._asr._markup)
        return tail.split(ASR_TEXT_TAG)[-1]

    def _update(self, start: float, timings: Timings | None, is_final: bool = False) -> StreamUpdate:
        previous = self._reported
        full = self._stream_text(self._raw) if not is_final else self._committed
        if full.startswith(self._committed):
            tentative = full[len(self._committed) :]
        else:
            tentative = self._uncommitted_raw().rstrip()
            if tentative.strip() and self._committed and not tentative[:1].isspace():
                tentative = separator(self._committed, tentative.strip()) + tentative.strip()
        self._reported = self._committed
        if is_final and self._spoken:  # the one spoken longest, as Transcript.language
            language = max(self._spoken, key=self._spoken.__getitem__)
        else:
            language = self.language or parse_transcript(self._raw, None, markup=self._asr._markup).language
        return StreamUpdate(
            committed=self._committed,
            tentative="" if is_final else tentative,
            language=language,
            end=self._heard / self.sample_rate,
            new_committed=self._committed[len(previous) :],
            is_final=is_final,
            compute_seconds=time.perf_counter() - start,
            timings=timings,
        )
