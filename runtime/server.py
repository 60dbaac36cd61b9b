"""The local server (``qwen-asr-edge serve``): OpenAI's audio transcription API and realtime
transcription events over HTTP and a WebSocket, on Starlette (the ``[server]`` extra).

Routes: ``POST /v1/audio/transcriptions`` (openai_api.py), ``GET /v1/models``, ``GET /health``,
and the WebSocket ``/v1/realtime`` (realtime.py). All model work goes through one Scheduler
(scheduler.py): requests that wait together are decoded in one batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute

from .errors import AudioError, BundleError, InputError, MissingDependencyError, QwenAsrEdgeError
from .locked_folders import locked_temp_folder
from .openai_api import (
    KNOWN_FIELDS,
    ApiError,
    TextJoiner,
    TranscriptionRequest,
    parse_request,
    response_body,
    sse,
    usage,
)
from .options import TranscriptionOptions
from .prompt import normalize_language
from .scheduler import Busy, Expired, Scheduler
from .streaming import StreamingOptions

MB = 1 << 20
log = logging.getLogger("qwen_asr_edge")
# The folder of a server's uploads, in the temp folder.
UPLOADS_PREFIX = "qwen-asr-edge-uploads-"


@dataclass
class ServerConfig:
    """How the server behaves (``serve``'s options).

    Attributes:
        model_id: The name ``/v1/models`` lists. Requests may name any model: one server serves one.
        api_key: Requests must send ``Authorization: Bearer <api_key>``; None: no key.
        max_upload_bytes: Larger request bodies get 413 (OpenAI's limit is 25 MB).
        timeout: Seconds an upload may take, queue included (504 after). A realtime socket's
            steps have none: a skipped step would lose its audio.
        max_batch: Recordings decoded together at most.
        max_queue: Jobs waiting at most (503 beyond).
        max_sessions: Realtime sockets open at once at most (closed with 1013 beyond).
        options: Transcription options every request starts from.
        streaming: Streaming options of realtime sessions.
        default_language: The language of requests and sessions that name none (None: detect).
        default_context: The context of requests and sessions that give no prompt.
        allow_origins: Web origins whose pages may call the server (CORS), e.g.
            ``http://localhost:5173``, or ``*``; none by default.
    """

    model_id: str = "qwen3-asr"
    api_key: str | None = None
    max_upload_bytes: int = 25 * MB
    timeout: float = 600.0
    max_batch: int = 8
    max_queue: int = 64
    max_sessions: int = 8
    options: TranscriptionOptions = field(default_factory=TranscriptionOptions)
    streaming: StreamingOptions = field(default_factory=StreamingOptions)
    default_language: str | None = None
    default_context: str = ""
    allow_origins: list[str] = field(default_factory=list)


class ServerState:
    """What the routes share: the Transcriber, its Scheduler, counters."""

    def __init__(self, transcriber, config: ServerConfig):
        if config.default_language:  # as sessions show it: "German", not "de"
            config = replace(
                config, default_language=normalize_language(config.default_language, transcriber.languages)
            )
        self.transcriber = transcriber
        self.config = config
        self.scheduler = Scheduler(transcriber, max_batch=config.max_batch, max_queue=config.max_queue)
        self.created = int(time.time())
        self.realtime_sessions = 0
        self.requests = 0
        # Every upload is written in a folder of its own in here; all of it goes when the server
        # stops, and a server killed outright leaves it to the next one's sweep (user audio).
        self._held = contextlib.ExitStack()
        self.uploads = self._held.enter_context(locked_temp_folder(UPLOADS_PREFIX))
        names = _UploadNames(self.uploads)
        log.addFilter(names)
        self._held.callback(log.removeFilter, names)

    def close(self) -> None:
        """Stop taking work (queued jobs get 503) and remove the uploads' folder."""
        self.scheduler.close(wait=False)
        self._held.close()

    def authorized(self, headers) -> bool:
        """Whether the request carries the API key (always, when there is none)."""
        key = self.config.api_key
        if key is None:
            return True
        given = headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), key.encode())


class _UploadNames(logging.Filter):
    """Log lines about an upload name it as the client did: ``upload memo.wav: truncated ...``, not
    by our copy's path (a folder that is gone by the time anyone reads the log)."""

    def __init__(self, uploads: Path):
        super().__init__()
        self._copy = re.compile(re.escape(str(uploads)) + r"/[^/]+/")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self._copy.search(message):
            record.msg, record.args = self._copy.sub("upload ", message), ()
        return True


def create_app(transcriber, config: ServerConfig | None = None, on_ready: Callable[[], None] | None = None):
    """The server's ASGI app, serving ``transcriber``.

    Args:
        transcriber: A loaded Transcriber; all model work runs on it, on one compute thread.
        config: See ServerConfig.
        on_ready: Called when the server starts (its lifespan), once it takes requests.

    Returns:
        An ASGI app: the Starlette app behind ``Gate`` (run it with uvicorn).
    """
    from .realtime import realtime_endpoint

    state = ServerState(transcriber, config or ServerConfig())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if on_ready is not None:
            on_ready()
        yield
        state.close()

    app = Starlette(
        routes=[
            Route("/health", health),
            Route("/v1/models", list_models),
            Route("/v1/models/{model_id:path}", get_model),
            Route("/v1/audio/transcriptions", transcriptions, methods=["POST"]),
            WebSocketRoute("/v1/realtime", realtime_endpoint),
            Route("/v1/realtime", _upgrade_required),
        ],
        exception_handlers={HTTPException: _http_error, ApiError: _api_error, Exception: _server_error},
        lifespan=lifespan,
    )
    app.state.server = state
    outer = Gate(app, state.config.max_upload_bytes)
    if state.config.allow_origins:
        # Outside the gate: a browser's preflight carries no key, and every answer needs the headers.
        outer = CORSMiddleware(
            outer,
            allow_origins=state.config.allow_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    outer.server_state = state
    return outer


def state_of(app) -> ServerState:
    """The ServerState of an app made by ``create_app``."""
    return app.server_state


def _state(request: Request) -> ServerState:
    return request.app.state.server


async def health(request: Request) -> Response:
    """``GET /health``: always open (for probes); what the server is doing."""
    state = _state(request)
    stats = state.scheduler.stats
    return JSONResponse(
        {
            "status": "ok",
            "model": state.config.model_id,
            "provider": state.transcriber.provider,
            "queued": state.scheduler.queued,
            "running": state.scheduler.running,
            "realtime_sessions": state.realtime_sessions,
            "requests": state.requests,
            "batches": stats.batches,
            "batched_requests": stats.batched,
            "largest_batch": stats.largest_batch,
        }
    )


def _model(state: ServerState) -> dict:
    return {
        "id": state.config.model_id,
        "object": "model",
        "created": state.created,
        "owned_by": "qwen-asr-edge",
    }


async def list_models(request: Request) -> Response:
    """``GET /v1/models``: the one model served."""
    return JSONResponse({"object": "list", "data": [_model(_state(request))]})


async def get_model(request: Request) -> Response:
    state = _state(request)
    if request.path_params["model_id"] != state.config.model_id:
        raise ApiError(
            404,
            f"the model {request.path_params['model_id']!r} does not exist; this server serves "
            f"{state.config.model_id!r}",
            code="model_not_found",
        )
    return JSONResponse(_model(state))


async def _upgrade_required(request: Request) -> Response:
    error = ApiError(
        426, "/v1/realtime is a WebSocket: connect with ws:// (or wss://)", code="upgrade_required"
    )
    return JSONResponse(error.body, status_code=426, headers={"Upgrade": "websocket"})


async def transcriptions(request: Request) -> Response:
    """``POST /v1/audio/transcriptions`` (openai_api.py has the fields and formats)."""
    state = _state(request)
    state.requests += 1
    folder = Path(tempfile.mkdtemp(dir=state.uploads))
    try:
        name, path, req = await _receive(request, folder)
        req = replace(
            req,
            language=req.language or state.config.default_language,
            context=req.context or state.config.default_context,
        )
        options = req.options(state.config.options)
        audio = await _prepare(state, path, name, req, options)
        if req.stream:
            response = _stream(state, audio, name, req, options, folder)
            folder = None  # the stream removes it when it ends
            return response
        work = state.scheduler.transcribe(
            audio,
            language=req.language,
            context=req.context,
            options=options,
            source=name,
            timeout=state.config.timeout,
        )
        transcript = await _scheduled(_unless_client_leaves(request, work), name)
        if transcript is None:  # nobody to answer; its job was dropped if it had not started
            return Response(status_code=499)
        body, media_type = response_body(transcript, req)
        return Response(body, media_type=media_type)
    finally:
        if folder is not None:  # at once, not in a thread: a cancelled task would not wait for it
            shutil.rmtree(folder, ignore_errors=True)


async def _unless_client_leaves(request: Request, work):
    """``await work``, or None as soon as the client disconnects (``work`` is then cancelled, so a
    job still queued never runs)."""

    async def left() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    job, gone = asyncio.ensure_future(work), asyncio.ensure_future(left())
    try:
        await asyncio.wait({job, gone}, return_when=asyncio.FIRST_COMPLETED)
        return job.result() if job.done() else None
    finally:
        for task in (job, gone):
            task.cancel()


async def _receive(request: Request, folder: Path) -> tuple[str, Path, TranscriptionRequest]:
    """The upload saved in ``folder`` under its own name, and the checked fields.

    Raises:
        ApiError: 400 no file, a malformed form, bad fields; 413 too large.
    """
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(400, "send the audio as multipart/form-data with a 'file' field", param="file")
    try:
        async with request.form(max_files=1, max_fields=len(KNOWN_FIELDS) + 8) as form:
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                said = "with the audio is missing"
                if upload:  # curl's -F file=x.wav sends the name as text
                    said = "is text, not a file upload (curl: -F file=@PATH)"
                raise ApiError(400, f"the 'file' field {said}", param="file")
            fields: dict[str, list[str]] = {}
            for key, value in form.multi_items():
                if key != "file" and isinstance(value, str):
                    fields.setdefault(key, []).append(value)
            name = _upload_name(upload.filename)
            path = folder / name
            await run_in_threadpool(_save, upload.file, path)
    except BodyTooLarge as e:
        raise ApiError(413, str(e), code="request_too_large") from None
    except ApiError:
        raise
    except Exception as e:  # python-multipart's MultiPartException, a broken form
        detail = re.sub(r"^\d{3}: ", "", str(e))  # Starlette's HTTPException says "400: ..."
        raise ApiError(400, f"the form could not be read: {detail}") from None
    return name, path, parse_request(fields)


def _upload_name(filename: str | None) -> str:
    """The upload's own file name, safe as a file name here: its last part, no control characters."""
    name = re.split(r"[/\\]", filename or "")[-1]
    name = "".join(c for c in name if c.isprintable()).strip().lstrip(".")
    return name[:200] or "audio"


def _save(source, path: Path) -> None:
    with open(path, "wb") as out:
        shutil.copyfileobj(source, out, 1 << 20)


async def _prepare(state: ServerState, path: Path, name: str, req: TranscriptionRequest, options):
    """The upload decoded (or, when long, its path), its options checked, off the event loop.

    Raises:
        ApiError: 400 not audio, a bad language or prompt; 415 a format this install cannot read.
    """
    asr = state.transcriber

    def prepare():
        asr.prompt_ids(1, req.context, req.language)  # the language and prompt, before decoding
        if options.word_timestamps:
            _ = asr.aligner
        try:
            asr.check_options(options, req.context)
        except InputError:  # the server's own options fit (fixed, 30 s chunks): the prompt does not
            limit = asr.bundle.manifest.kv_cache.max_positions
            raise ApiError(
                400,
                f"the prompt is too long: with this server's chunks of {asr.chunk_seconds(options):g} s and "
                f"their token cap it needs more than the model's {limit} positions; send a shorter prompt",
                param="prompt",
            ) from None
        return asr.prepare(path, options)

    try:
        return await run_in_threadpool(prepare)
    except AudioError as e:
        raise _invalid_audio(name, e) from None
    except MissingDependencyError as e:  # the remedy is the server owner's: said in its log
        log.warning("%s: %s", name, e)
        raise ApiError(
            415,
            f"{name}: this server cannot read {Path(name).suffix or 'such'} files (its install lacks the "
            f"[{e.extra}] extra); send WAV, FLAC, MP3 or OGG",
            param="file",
            code="unsupported_format",
        ) from None
    except BundleError:  # the only one here: no aligner (the server's paths are not the client's business)
        raise ApiError(
            400,
            "word timestamps need the forced aligner, which this server's model lacks (a bundle exported "
            "with --aligner)",
            param="timestamp_granularities",
        ) from None
    except QwenAsrEdgeError as e:  # InputError: the language, the prompt
        param = "language" if "language" in str(e) else None
        raise ApiError(400, str(e), param=param) from None


def _invalid_audio(name: str, e: AudioError) -> ApiError:
    """The 400 for an upload that is not audio, named as the client named it (not our copy's path)."""
    return ApiError(400, f"{name}: {e.problem}", param="file", code="invalid_audio")


async def _scheduled(work, name: str):
    """Await scheduler work, its errors as API errors."""
    try:
        return await work
    except Busy as e:
        raise ApiError(503, str(e), type="server_error", code="server_busy") from None
    except Expired as e:
        raise ApiError(504, str(e), type="server_error", code="timeout") from None
    except AudioError as e:  # found only while decoding (a long file read a block at a time)
        raise _invalid_audio(name, e) from None
    except InputError as e:
        raise ApiError(400, str(e)) from None


def _stream(
    state: ServerState, audio, name: str, req: TranscriptionRequest, options, folder: Path
) -> Response:
    """stream=true: OpenAI's ``transcript.text.delta`` events, one per decoded chunk, then
    ``transcript.text.done``; the deltas concatenate to the done event's text."""
    loop = asyncio.get_running_loop()
    texts: asyncio.Queue[str | None] = asyncio.Queue()
    stop = threading.Event()
    asr = state.transcriber

    def run() -> float:
        end = 0.0
        for segment in asr.iter_segments(audio, language=req.language, context=req.context, options=options):
            loop.call_soon_threadsafe(texts.put_nowait, segment.text)
            end = segment.end
            if stop.is_set():  # the client left
                break
        return audio.shape[0] / asr.sample_rate if hasattr(audio, "shape") else end

    async def events() -> AsyncIterator[str]:
        work = asyncio.ensure_future(state.scheduler.call(run, timeout=state.config.timeout))
        # The end mark follows every text: both reach the loop through call_soon_threadsafe, in order.
        work.add_done_callback(lambda _: texts.put_nowait(None))
        joined = TextJoiner()
        try:
            while (text := await texts.get()) is not None:
                if delta := joined.add(text):
                    yield sse({"type": "transcript.text.delta", "delta": delta})
            try:
                seconds = await _scheduled(work, name)
            except ApiError as e:
                yield sse({"type": "error", **e.body})
                return
            yield sse({"type": "transcript.text.done", "text": joined.text, "usage": usage(seconds)})
        finally:
            stop.set()
            work.cancel()
            shutil.rmtree(folder, ignore_errors=True)

    # The generator removes the folder when it ends; the background task when it never started
    # (a client gone before the first byte).
    cleanup = BackgroundTask(shutil.rmtree, folder, True)
    return StreamingResponse(events(), media_type="text/event-stream", background=cleanup)


class BodyTooLarge(Exception):
    pass


class Gate:
    """ASGI middleware in front of the routes: ``/v1/`` requests need the API key (401), and a
    request body over ``limit`` bytes is refused (413): by its Content-Length at once, or when the
    bytes read pass it (chunked uploads: ``BodyTooLarge`` then reaches the route). Sockets check
    the key themselves (realtime.py), which can also come as a subprotocol."""

    def __init__(self, app: Starlette, limit: int):
        self.app = app
        self.limit = limit
        self.server_state = app.state.server

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if len(scope["path"]) > 1 and scope["path"].endswith("/"):
            # Served as without the slash: Starlette would answer 307, which a client posting a file
            # does not follow (curl, httpx and so OpenAI's client by default), and the upload is lost.
            scope = {**scope, "path": scope["path"].rstrip("/")}
        headers = dict(scope["headers"])
        error = None
        if scope["path"].startswith("/v1/") and not self.server_state.authorized(
            {"authorization": headers.get(b"authorization", b"").decode("latin-1")}
        ):
            error = ApiError(
                401,
                "a valid API key is needed: send the header Authorization: Bearer <key> (serve --api-key)",
                type="authentication_error",
                code="invalid_api_key",
            )
        length = headers.get(b"content-length")
        if error is None and length is not None and length.isdigit() and int(length) > self.limit:
            error = ApiError(413, self._message(int(length)), code="request_too_large")
        if error is not None:
            if length is None or (length.isdigit() and int(length) <= DRAIN_BYTES):
                await _drain(receive, DRAIN_BYTES)  # else the close can reset the socket under the answer
            return await _api_error(None, error)(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                if message.get("more_body"):  # a chunked upload: no Content-Length said so before
                    await _drain(receive, DRAIN_BYTES - seen)
                raise BodyTooLarge(self._message(seen, more=True))
            return message

        return await self.app(scope, limited, send)

    def _message(self, size: int, more: bool = False) -> str:
        return (
            f"the request body is {'over ' if more else ''}{size / MB:.3g} MB; this server takes at most "
            f"{self.limit / MB:.3g} MB (serve --max-upload-mb)"
        )


# A refused body up to this size (by Content-Length, or in all when chunked) is read and dropped
# before the answer: closing a socket with unread bytes resets it (TCP RST), and the client then
# loses the answer it was sent (seen as "peer closed connection without sending complete message
# body" on the 413 of a 1 MB upload).
DRAIN_BYTES = 64 * MB


async def _drain(receive, most: int) -> None:
    """Read and drop the rest of a request body, up to ``most`` more bytes."""
    while most > 0:
        message = await receive()
        most -= len(message.get("body", b""))
        if message.get("type") != "http.request" or not message.get("more_body"):
            return


def _api_error(request: Request | None, exc: ApiError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if exc.status == 503:
        headers = {"Retry-After": "1"}
    if exc.status == 413:  # the rest of the body is not read: the connection cannot be reused
        headers = {"Connection": "close"}
    return JSONResponse(exc.body, status_code=exc.status, headers=headers)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    message = {
        404: f"no route {request.url.path}",
        405: f"{request.method} is not allowed on {request.url.path}",
    }
    error = ApiError(exc.status_code, message.get(exc.status_code, str(exc.detail)))
    return JSONResponse(error.body, status_code=exc.status_code, headers=exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    error = ApiError(500, f"internal error: {type(exc).__name__}: {exc}", type="server_error")
    return JSONResponse(error.body, status_code=500)


def default_model_id(transcriber) -> str:
    """``qwen3-asr-0.6b`` (``-int4`` and so on when quantized); the demo model's is ``qwen3-asr-demo``."""
    from .demo import demo_bundle

    manifest = transcriber.bundle.manifest
    if os.path.realpath(transcriber.bundle.path) == os.path.realpath(demo_bundle()):
        return "qwen3-asr-demo"
    name = f"{manifest.model.family}-{manifest.model.size}".lower()
    return name if manifest.recipe == "fp32" else f"{name}-{manifest.recipe}"
