"""The realtime transcription socket (``/v1/realtime``): OpenAI's realtime transcription events on a
streaming session (streaming.py), one session per socket.

Client events: ``session.update`` (GA: ``session.audio.input.format`` / ``.transcription`` /
``.turn_detection``) or the beta ``transcription_session.update`` (``input_audio_format``,
``input_audio_transcription``); ``input_audio_buffer.append`` (base64 PCM16, mono, little-endian,
24 kHz as OpenAI's ``audio/pcm``; another ``rate`` from 8 to 48 kHz may be set); ``.commit``;
``.clear``. Server events: ``session.created`` / ``.updated``, ``input_audio_buffer.committed`` /
``.cleared``, ``conversation.item.input_audio_transcription.delta`` / ``.completed``, ``error``.

Where it differs from OpenAI: text comes while the audio is heard, not after a commit. Each delta
is newly *committed* text (streaming.py: it never changes afterwards), so the deltas of an item
are always a prefix of its transcript; they carry the item's id before the item is committed.
There is no server turn detection: the client commits (``turn_detection`` must be null), and
each commit ends an item, whose ``completed`` transcript is the session's final committed text.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import uuid
from dataclasses import dataclass

import numpy as np
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from .audio import pcm_to_float
from .errors import QwenAsrEdgeError
from .openai_api import usage
from .prompt import normalize_language
from .scheduler import Busy

log = logging.getLogger(__name__)

PCM_RATE = 24000  # OpenAI's audio/pcm
MIN_RATE, MAX_RATE = 8000, 48000
# Audio received but not yet decoded, at most: beyond it the socket is not read (TCP holds the
# client back), so a client sending faster than the model decodes cannot fill the memory.
MAX_PENDING_SECONDS = 30.0
# A client subprotocol that carries the API key (browsers cannot set headers), as OpenAI accepts.
KEY_PROTOCOL = "openai-insecure-api-key."


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def _object(parent: dict, key: str, where: str, event_id: str | None) -> dict:
    """``parent[key]`` when it is a JSON object, {} when absent or null.

    Raises:
        EventError: it is something else (a string, a list): named by its path in the event.
    """
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise EventError(
            f"{where}.{key} is a JSON object, not {type(value).__name__} {value!r:.40}",
            "invalid_event",
            f"{where}.{key}",
            event_id,
        )
    return value


class EventError(Exception):
    """A client event that cannot be done: sent back as an ``error`` event; the socket stays open."""

    def __init__(self, message: str, code: str, param: str | None = None, event_id: str | None = None):
        super().__init__(message)
        self.error = {
            "type": "invalid_request_error",
            "code": code,
            "message": message,
            "param": param,
            "event_id": event_id,
        }


@dataclass
class _Config:
    language: str | None = None
    prompt: str = ""
    rate: int = PCM_RATE

    def session(self, session_id: str, model: str) -> dict:
        """The session as OpenAI's GA transcription session object."""
        return {
            "type": "transcription",
            "id": session_id,
            "object": "realtime.transcription_session",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": self.rate},
                    "transcription": {"model": model, "language": self.language, "prompt": self.prompt},
                    "turn_detection": None,
                    "noise_reduction": None,
                }
            },
        }


class RealtimeConnection:
    """One socket: reads client events, runs its streaming session on the server's scheduler in
    order, and sends the events that follow. Audio and commits are queued so they keep their order
    while earlier audio is still being decoded."""

    def __init__(self, websocket: WebSocket, state):
        self.ws = websocket
        self.state = state
        self.config = _Config(language=state.config.default_language, prompt=state.config.default_context)
        self.session_id = _id("sess")
        self.work: asyncio.Queue = asyncio.Queue()
        self.stream = None  # the StreamingSession of the open item
        self.item_id: str | None = None
        self.previous_item_id: str | None = None
        self.item_samples = 0
        self.rate = PCM_RATE  # the open item's
        self._odd = b""  # a PCM16 sample split between two appends
        self._send_lock = asyncio.Lock()
        self._pending = 0  # samples queued, not yet decoded
        self._drained = asyncio.Event()
        self._receiving_item = False  # audio appended since the last commit or clear (the reader's view)

    async def send(self, event: dict) -> None:
        event = {"event_id": _id("event"), **event}
        async with self._send_lock:
            if self.ws.application_state == WebSocketState.CONNECTED:
                # The client may leave (1006), or the server's shutdown close the socket, between the
                # check and the send: there is no one to tell then, and the reader sees it end.
                with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                    await self.ws.send_text(json.dumps(event, ensure_ascii=False))

    async def run(self) -> None:
        await self.send({"type": "session.created", "session": self._session()})
        worker = asyncio.create_task(self._process())
        try:
            while True:
                try:
                    text = await self.ws.receive_text()
                except KeyError:  # a binary frame: Starlette finds no "text" in it
                    await self._error(EventError("send events as JSON text frames", "invalid_event"))
                    continue
                except RuntimeError:
                    # Closed by the server's shutdown (1012): Starlette's WebSocketDisconnected.
                    if self.ws.application_state == WebSocketState.CONNECTED:
                        raise
                    break
                if worker.done():  # the decoding failed in a way that ends the session
                    break
                try:
                    await self._handle(text)
                except EventError as e:
                    await self._error(e)
        except WebSocketDisconnect:
            pass
        finally:  # the socket is gone: drop queued audio, skip work not yet started
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
            self.stream = None

    def _session(self) -> dict:
        return self.config.session(self.session_id, self.state.config.model_id)

    async def _error(self, e: EventError) -> None:
        await self.send({"type": "error", "error": e.error})

    async def _handle(self, text: str) -> None:
        try:
            event = json.loads(text)
        except json.JSONDecodeError as e:
            raise EventError(f"the event is not JSON: {e}", "invalid_json") from None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise EventError("an event is a JSON object with a 'type'", "invalid_event")
        kind, event_id = event["type"], event.get("event_id")
        if kind in ("session.update", "transcription_session.update"):
            self._update(
                event.get("session"), beta=kind.startswith("transcription_session"), event_id=event_id
            )
            reply = "transcription_session.updated" if kind.startswith("transcription") else "session.updated"
            await self.send({"type": reply, "session": self._session()})
        elif kind == "input_audio_buffer.append":
            samples = self._samples(event.get("audio"), event_id)
            while self._pending > MAX_PENDING_SECONDS * self.config.rate:
                self._drained.clear()
                await self._drained.wait()
            self._pending += samples.size
            self._receiving_item = self._receiving_item or samples.size > 0
            self.work.put_nowait(("audio", (samples, self.config)))
        elif kind in ("input_audio_buffer.commit", "input_audio_buffer.clear"):
            self._receiving_item, self._odd = False, b""  # an item's odd last byte is not the next's
            self.work.put_nowait((kind.rsplit(".", 1)[1], event_id))
        else:
            raise EventError(
                f"unsupported event type {kind!r}: this server transcribes (session.update, "
                "input_audio_buffer.append, .commit, .clear)",
                "unsupported_event",
                event_id=event_id,
            )

    def _update(self, session, beta: bool, event_id: str | None) -> None:
        """Apply a session update; what it changes holds from the next item on.

        Raises:
            EventError: an unsupported format or rate, an unknown language, turn detection.
        """
        if not isinstance(session, dict):
            raise EventError("session.update needs a 'session' object", "invalid_event", "session", event_id)
        if session.get("type", "transcription") != "transcription":
            raise EventError(
                f"session type {session.get('type')!r} is not served: this server runs transcription "
                "sessions",
                "unsupported_session_type",
                "session.type",
                event_id,
            )
        if beta:
            audio_format = session.get("input_audio_format")
            if audio_format not in (None, "pcm16"):
                raise EventError(
                    f"input_audio_format {audio_format!r} is not supported: send pcm16",
                    "unsupported_format",
                    "session.input_audio_format",
                    event_id,
                )
            transcription = _object(session, "input_audio_transcription", "session", event_id)
            turn_detection, where = session.get("turn_detection"), "session.turn_detection"
            rate = self.config.rate
        else:
            audio = _object(session, "audio", "session", event_id)
            audio_input = _object(audio, "input", "session.audio", event_id)
            audio_format = _object(audio_input, "format", "session.audio.input", event_id)
            if audio_format.get("type", "audio/pcm") != "audio/pcm":
                raise EventError(
                    f"audio format {audio_format.get('type')!r} is not supported: send audio/pcm (PCM16)",
                    "unsupported_format",
                    "session.audio.input.format.type",
                    event_id,
                )
            rate = audio_format.get("rate", self.config.rate)
            if not (isinstance(rate, int) and MIN_RATE <= rate <= MAX_RATE):
                raise EventError(
                    f"rate {rate!r} is not supported: an integer from {MIN_RATE} to {MAX_RATE} Hz",
                    "unsupported_format",
                    "session.audio.input.format.rate",
                    event_id,
                )
            transcription = _object(audio_input, "transcription", "session.audio.input", event_id)
            turn_detection, where = audio_input.get("turn_detection"), "session.audio.input.turn_detection"
        language = transcription.get("language", self.config.language)
        if language is not None and not isinstance(language, str):
            raise EventError(
                "the language is text (a name or ISO code)", "invalid_event", "language", event_id
            )
        if language:
            try:
                language = normalize_language(language, self.state.transcriber.languages)
            except QwenAsrEdgeError as e:
                raise EventError(str(e), "unsupported_language", "language", event_id) from None
        prompt = transcription.get("prompt", self.config.prompt) or ""
        if not isinstance(prompt, str):
            raise EventError("the prompt is text", "invalid_event", "prompt", event_id)
        try:  # now, not when the next item's first audio comes (and is lost with it)
            self.state.transcriber.check_stream_context(prompt, self.state.config.streaming)
        except QwenAsrEdgeError as e:
            raise EventError(str(e), "invalid_prompt", "prompt", event_id) from None
        if turn_detection is not None:
            raise EventError(
                "server turn detection is not supported: set turn_detection to null and send "
                "input_audio_buffer.commit to end an item (its text comes live before that)",
                "unsupported_turn_detection",
                where,
                event_id,
            )
        if rate != self.config.rate and self._receiving_item:
            raise EventError(
                "the audio rate cannot change within an item: commit or clear it first",
                "rate_change_in_item",
                "session.audio.input.format.rate",
                event_id,
            )
        # The language and prompt apply from the next item (an item is one streaming session).
        self.config = _Config(language=language or None, prompt=prompt, rate=rate)

    def _samples(self, audio, event_id: str | None) -> np.ndarray:
        """An append's base64 PCM16 as float32 in [-1, 1]."""
        if not isinstance(audio, str):
            raise EventError(
                "input_audio_buffer.append needs 'audio': base64 PCM16", "invalid_audio", "audio", event_id
            )
        try:
            data = self._odd + base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise EventError("'audio' is not valid base64", "invalid_audio", "audio", event_id) from None
        whole = len(data) // 2 * 2
        self._odd = data[whole:]
        return pcm_to_float(np.frombuffer(data[:whole], dtype="<i2"), "input_audio_buffer")

    # -- the decoding side, in order -------------------------------------------------------------

    async def _process(self) -> None:
        pending = None  # a non-audio event taken while gathering audio
        while True:
            kind, value = pending or await self.work.get()
            pending = None
            try:
                if kind == "audio":
                    blocks, config = [value[0]], value[1]
                    while not self.work.empty():  # all the audio that came meanwhile, in one step
                        kind_, value_ = self.work.get_nowait()
                        if kind_ != "audio":
                            pending = (kind_, value_)
                            break
                        blocks.append(value_[0])
                    samples = np.concatenate(blocks)
                    try:
                        await self._feed(samples, config)
                    finally:
                        self._pending -= samples.size
                        self._drained.set()
                elif kind == "commit":
                    await self._commit(value)
                else:
                    self._drop_item()
                    await self.send({"type": "input_audio_buffer.cleared"})
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a bug or a failed step: this item is lost, the socket goes on
                code = "server_shutting_down" if isinstance(e, Busy) else "transcription_failed"
                if not isinstance(e, Busy):  # a stopping server says Busy: not a failure to look into
                    log.exception("realtime step failed")
                item_id = self.item_id
                self._drop_item()
                await self.send(
                    {
                        "type": "conversation.item.input_audio_transcription.failed",
                        "item_id": item_id,
                        "content_index": 0,
                        "error": {"type": "server_error", "code": code, "message": str(e)},
                    }
                )

    def _drop_item(self) -> None:
        self.stream, self.item_id, self.item_samples = None, None, 0

    async def _feed(self, samples: np.ndarray, config: _Config) -> None:
        """Decode an item's next audio; its first audio starts the item with ``config`` (the
        session's configuration when that audio came)."""
        if samples.size == 0:
            return
        if self.stream is None:
            self.stream = self.state.transcriber.stream(
                language=config.language, context=config.prompt, options=self.state.config.streaming
            )
            self.item_id = _id("item")
            self.rate = config.rate
        self.item_samples += samples.size
        stream, rate = self.stream, self.rate
        updates = await self.state.scheduler.call(lambda: stream.feed(samples, rate), force=True)
        for update in updates:
            await self._delta(update.new_committed)

    async def _delta(self, text: str) -> None:
        if text:
            await self.send(
                {
                    "type": "conversation.item.input_audio_transcription.delta",
                    "item_id": self.item_id,
                    "content_index": 0,
                    "delta": text,
                }
            )

    async def _commit(self, event_id: str | None) -> None:
        if self.stream is None:
            await self._error(
                EventError(
                    "the input audio buffer is empty: append audio before committing",
                    "input_audio_buffer_commit_empty",
                    event_id=event_id,
                )
            )
            return
        stream, item_id, seconds = self.stream, self.item_id, self.item_samples / self.rate
        self.stream, self.item_samples = None, 0
        await self.send(
            {
                "type": "input_audio_buffer.committed",
                "item_id": item_id,
                "previous_item_id": self.previous_item_id,
            }
        )
        self.previous_item_id = item_id
        final = await self.state.scheduler.call(stream.finish, force=True)
        await self._delta(final.new_committed)
        await self.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": final.committed,
                "usage": usage(seconds),
            }
        )


async def realtime_endpoint(websocket: WebSocket) -> None:
    """``/v1/realtime``: checks the key (the Authorization header, or OpenAI's
    ``openai-insecure-api-key.<key>`` subprotocol) and the session limit, then serves the socket."""
    state = websocket.app.state.server
    offered = websocket.scope.get("subprotocols") or []
    keys = [p[len(KEY_PROTOCOL) :] for p in offered if p.startswith(KEY_PROTOCOL)]
    headers = dict(websocket.headers)
    if keys and "authorization" not in headers:
        headers["authorization"] = f"Bearer {keys[0]}"
    if not state.authorized(headers):
        message = (
            "a valid API key is needed: Authorization: Bearer <key>, or the subprotocol "
            "openai-insecure-api-key.<key>"
        )
        if "websocket.http.response" in websocket.scope.get("extensions", {}):  # a 401 with a body
            error = {
                "message": message,
                "type": "authentication_error",
                "param": None,
                "code": "invalid_api_key",
            }
            await websocket.send_denial_response(JSONResponse({"error": error}, status_code=401))
        else:
            await websocket.close(code=1008, reason="a valid API key is needed")
        return
    # A browser fails the handshake unless one of the protocols it offered is chosen.
    subprotocol = "realtime" if "realtime" in offered else (offered[0] if offered else None)
    await websocket.accept(subprotocol=subprotocol)
    if state.realtime_sessions >= state.config.max_sessions:
        busy = EventError(
            f"the server is busy: {state.realtime_sessions} realtime sessions are open "
            "(serve --max-sessions)",
            "server_busy",
        )
        await websocket.send_text(
            json.dumps({"type": "error", "event_id": _id("event"), "error": busy.error})
        )
        await websocket.close(code=1013, reason="too many realtime sessions")
        return
    state.realtime_sessions += 1
    try:
        await RealtimeConnection(websocket, state).run()
    finally:
        state.realtime_sessions -= 1
        if websocket.client_state != WebSocketState.DISCONNECTED:
            with contextlib.suppress(RuntimeError):  # already closed from the other side
                await websocket.close()
