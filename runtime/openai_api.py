"""OpenAI's audio transcription API as data: a request's form fields in, a Transcript's response
body out, and errors in OpenAI's shape. No web framework here (server.py serves these).

Follows OpenAI's ``POST /v1/audio/transcriptions`` reference: multipart fields ``file``, ``model``,
``language`` (here an ISO code or a name), ``prompt`` (here the model's context: hot words or
background text), ``response_format``, ``timestamp_granularities[]``, ``stream``, ``temperature``.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from .options import TranscriptionOptions
from .results import Segment, Transcript
from .text import join_texts
from .writers import SrtWriter, TxtWriter, VttWriter

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES = ("word", "segment")
# Form fields OpenAI defines that change nothing here, accepted so that clients sending them work:
# one server serves one model (model, which curl users may leave out), decoding is greedy
# (temperature, checked to be in OpenAI's range), the chunking is ours, logprobs are not returned.
IGNORED_FIELDS = ("model", "temperature", "chunking_strategy", "include[]", "include")
KNOWN_FIELDS = (
    "file",
    "language",
    "prompt",
    "response_format",
    "timestamp_granularities[]",
    "timestamp_granularities",
    "stream",
    *IGNORED_FIELDS,
)


class ApiError(Exception):
    """An error response: the HTTP status and OpenAI's error object.

    Attributes:
        status: The HTTP status code (4xx for the request's fault).
        body: ``{"error": {"message", "type", "param", "code"}}`` as OpenAI writes it.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",  # OpenAI's field name
        param: str | None = None,
        code: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": type, "param": param, "code": code}}


@dataclass(frozen=True)
class TranscriptionRequest:
    """The fields of one transcription request, checked.

    Attributes:
        language: As given (a name or ISO code; the Transcriber checks it), None to detect.
        context: The ``prompt`` field.
        response_format: One of RESPONSE_FORMATS.
        words: ``timestamp_granularities[]`` includes "word" (the bundle's forced aligner).
        stream: Server-sent text deltas instead of one response.
    """

    language: str | None = None
    context: str = ""
    response_format: str = "json"
    words: bool = False
    stream: bool = False

    def options(self, base: TranscriptionOptions) -> TranscriptionOptions:
        """``base`` with what this request asks for: word times, and the log-probabilities that
        verbose_json reports per segment."""
        return replace(
            base,
            word_timestamps=base.word_timestamps or self.words,
            log_probs=base.log_probs or self.response_format == "verbose_json",
        )


def parse_request(fields: Mapping[str, Sequence[str]]) -> TranscriptionRequest:
    """Check a request's text fields (every value of each, as multipart carries them).

    Raises:
        ApiError: 400 for an unknown response_format or granularity, a field given twice, words
            asked for outside verbose_json (as OpenAI refuses), stream=true with a format that is
            not text, or a temperature outside OpenAI's 0 to 1 (accepted, and greedy all the same).
    """

    def one(name: str) -> str | None:
        values = fields.get(name, ())
        if len(values) > 1:
            raise ApiError(400, f"{name} is given {len(values)} times; give it once", param=name)
        return values[0] if values else None

    response_format = one("response_format") or "json"
    if response_format not in RESPONSE_FORMATS:
        raise ApiError(
            400,
            f"response_format {response_format!r} is not one of {', '.join(RESPONSE_FORMATS)}",
            param="response_format",
        )
    granularities = [*fields.get("timestamp_granularities[]", ()), *fields.get("timestamp_granularities", ())]
    for g in granularities:
        if g not in GRANULARITIES:
            raise ApiError(
                400,
                f"timestamp_granularities {g!r} is not one of {', '.join(GRANULARITIES)}",
                param="timestamp_granularities",
            )
    if granularities and response_format != "verbose_json":
        raise ApiError(
            400,
            "timestamp_granularities needs response_format verbose_json",
            param="timestamp_granularities",
        )
    stream = (one("stream") or "false").strip().lower()
    if stream not in ("true", "false"):
        raise ApiError(400, f"stream must be true or false, not {stream!r}", param="stream")
    if stream == "true" and response_format not in ("json", "text"):
        raise ApiError(
            400,
            f"stream=true sends text deltas: use response_format json or text, not {response_format}",
            param="stream",
        )
    temperature = (one("temperature") or "").strip() or None  # empty: not given (as language)
    if temperature is not None:
        try:
            value = float(temperature)
        except ValueError:
            value = float("nan")
        if not 0 <= value <= 1:  # OpenAI's range; any value decodes greedily here
            raise ApiError(
                400, f"temperature must be a number from 0 to 1, not {temperature!r}", param="temperature"
            )
    language = (one("language") or "").strip() or None
    return TranscriptionRequest(
        language=language,
        context=one("prompt") or "",
        response_format=response_format,
        words="word" in granularities,
        stream=stream == "true",
    )


def response_body(transcript: Transcript, request: TranscriptionRequest) -> tuple[str, str]:
    """The response to ``request``: (body, media type).

    json is ``{"text", "usage"}``; text, srt and vtt are what ``qwen-asr-edge transcribe
    --format txt|srt|vtt`` prints; verbose_json is OpenAI's (task, language as a lowercase
    name, duration, text, segments, and words when asked for).
    """
    fmt = request.response_format
    if fmt == "text":
        return TxtWriter().format(transcript), "text/plain; charset=utf-8"
    if fmt == "srt":
        return SrtWriter().format(transcript), "application/x-subrip; charset=utf-8"
    if fmt == "vtt":
        return VttWriter().format(transcript), "text/vtt; charset=utf-8"
    if fmt == "verbose_json":
        body = verbose_json(transcript, request.words)
    else:
        body = {"text": transcript.text, "usage": usage(transcript.duration)}
    return json.dumps(body, ensure_ascii=False), "application/json"


def usage(seconds: float) -> dict:
    """OpenAI's duration usage: the audio's length in seconds."""
    return {"type": "duration", "seconds": round(seconds, 3)}


def verbose_json(transcript: Transcript, words: bool) -> dict:
    """OpenAI's verbose_json for a Transcript (whisper's segment fields).

    Per segment: ``seek`` is its start in 10 ms frames (whisper's unit), ``tokens`` the generated
    ids, ``temperature`` 0 (greedy), ``avg_logprob`` the mean natural log-probability,
    ``compression_ratio`` as whisper computes it (text bytes over zlib-compressed bytes), and
    ``no_speech_prob`` 1 when the model wrote no transcript for the chunk (silence, noise), else 0:
    Qwen3-ASR has no no-speech probability, only that decision.
    """
    body = {
        "task": "transcribe",
        "language": transcript.language.lower(),
        "duration": round(transcript.duration, 3),
        "text": transcript.text,
        "segments": [_segment(i, s) for i, s in enumerate(transcript.segments)],
        "usage": usage(transcript.duration),
    }
    if words:
        body["words"] = [
            {"word": w.text, "start": round(w.start, 3), "end": round(w.end, 3)} for w in transcript.words
        ]
    return body


def _segment(i: int, s: Segment) -> dict:
    return {
        "id": i,
        "seek": round(s.start * 100),
        "start": round(s.start, 3),
        "end": round(s.end, 3),
        "text": s.text,
        "tokens": list(s.tokens),
        "temperature": 0.0,
        "avg_logprob": round(s.avg_logprob, 4) if s.avg_logprob is not None else None,
        "compression_ratio": round(compression_ratio(s.text), 4),
        "no_speech_prob": 0.0 if s.reached_text else 1.0,
    }


def compression_ratio(text: str) -> float:
    """Whisper's: UTF-8 bytes over zlib-compressed bytes (0 for no text)."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


class TextJoiner:
    """Chunk texts joined as ``text.join_texts`` joins them, one at a time; ``add`` returns what
    each adds, so the deltas concatenate to exactly the transcript's text."""

    def __init__(self) -> None:
        self.text = ""

    def add(self, piece: str) -> str:
        joined = join_texts((self.text, piece))
        delta, self.text = joined[len(self.text) :], joined
        return delta


def sse(event: dict) -> str:
    """One server-sent event carrying ``event`` as JSON (the openai client's stream format)."""
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n"
