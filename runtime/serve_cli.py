"""``qwen-asr-edge serve``: the local server (server.py) on uvicorn, until Ctrl-C or SIGTERM.

Needs the [server] extra (Starlette, uvicorn, python-multipart, websockets).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import math
import os
import signal
import socket
import sys
from dataclasses import replace

from .cli import ModelResolver, add_model_options, add_session_options, check_model_options, load_transcriber
from .console import quiet_loggers, run_command
from .errors import InputError, MissingDependencyError
from .options import DEFAULTS, MAX_BATCH_SIZE

API_KEY_ENV = "QWEN_ASR_EDGE_API_KEY"


def parse_args(argv: list[str] | None = None, prog: str = "qwen-asr-edge serve") -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Serve OpenAI's audio transcription API (POST /v1/audio/transcriptions, GET /v1/models) "
        "and realtime transcription events (WebSocket /v1/realtime) on this machine. Needs the [server] "
        "extra.",
    )
    add_model_options(p)
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default: %(default)s, this machine only; 0.0.0.0 opens it to the "
        "network: set --api-key)",
    )
    p.add_argument("--port", type=int, default=8000, help="the port (default: %(default)s; 0: any free one)")
    p.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV),
        help=f"requests must send Authorization: Bearer KEY (default: ${API_KEY_ENV}; none: no key)",
    )
    p.add_argument(
        "--served-model-name",
        help="the model's name in /v1/models (default: qwen3-asr-0.6b and the like, from the bundle)",
    )
    p.add_argument(
        "--max-upload-mb", type=float, default=25.0, help="largest request body in MB (default: %(default)s)"
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds a request may take, waiting included; then 504 (default: %(default)s)",
    )
    p.add_argument(
        "--max-batch",
        type=int,
        default=8,
        help="uploads that wait together are decoded in one decoder batch, this many at most "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--max-queue",
        type=int,
        default=64,
        help="requests waiting at most; more get 503 with Retry-After (default: %(default)s)",
    )
    p.add_argument(
        "--max-sessions",
        type=int,
        default=8,
        help="realtime sockets open at once at most (default: %(default)s)",
    )
    add_session_options(p)
    p.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let web pages from ORIGIN call the server (CORS), e.g. http://localhost:5173, or * for any "
        "(repeatable; default: none)",
    )
    p.add_argument("--no-verify", action="store_true", help="skip checking the bundle files' sha256")
    p.add_argument("--debug", action="store_true", help="tracebacks and uvicorn's access log")
    args = p.parse_args(argv)
    check_model_options(p, args)
    if not 0 <= args.port <= 65535:
        p.error("--port must be between 0 and 65535")
    if not (math.isfinite(args.max_upload_mb) and args.max_upload_mb > 0):
        p.error("--max-upload-mb must be a positive number")
    if not (math.isfinite(args.timeout) and args.timeout > 0):
        p.error("--timeout must be a positive number of seconds")
    for flag in ("max_batch", "max_queue", "max_sessions"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag.replace('_', '-')} must be at least 1")
    if args.max_batch > MAX_BATCH_SIZE:
        p.error(f"--max-batch must be at most {MAX_BATCH_SIZE}")
    if args.api_key is not None and not args.api_key.strip():
        p.error(f"--api-key (or ${API_KEY_ENV}) is empty")
    return args


def import_server():
    """uvicorn and the server module, or the extra to install.

    Raises:
        MissingDependencyError: the [server] extra is missing.
    """
    try:
        import uvicorn

        from . import server
    except ImportError as e:
        raise MissingDependencyError(f"serve ({e.name} is missing)", "server") from None
    return uvicorn, server


def listening_socket(host: str, port: int) -> socket.socket:
    """A listening socket, so the real port is known before the server starts (``--port 0``).

    Raises:
        InputError: the address is taken or cannot be used.
    """
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:  # a host name
        family = socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.listen(2048)  # connections made before uvicorn starts wait in the backlog, not refused
    sock.set_inheritable(True)
    return sock


class _Stop(Exception):
    """SIGTERM, as an exception (uvicorn re-raises the signal once it has shut down)."""


def _stop(signum, frame) -> None:
    raise _Stop


def serve(args: argparse.Namespace, resolve_model: ModelResolver | None = None) -> int:
    """Load the model, listen, and serve until Ctrl-C or SIGTERM.

    Uvicorn finishes the requests in flight (up to 5 s) and then raises the signal again; here
    that ends the command with exit code 0, as stopping is how a server's run ends.

    Returns:
        The exit code: 0 after Ctrl-C or SIGTERM.

    Raises:
        MissingDependencyError: the [server] extra is missing.
        InputError: the address cannot be used; a bad language or context.
        QwenAsrEdgeError: a bad bundle or model.
    """
    uvicorn, server = import_server()
    previous = signal.signal(signal.SIGTERM, _stop)
    states = []
    try:
        code = _serve(args, resolve_model, uvicorn, server, states)
    except (_Stop, KeyboardInterrupt):
        print("stopped", file=sys.stderr)
        code = 0
    finally:
        signal.signal(signal.SIGTERM, previous)
    if states and states[0].scheduler.running:
        # A job the shutdown answered with 503 (or a socket's step) still runs in onnxruntime on the
        # compute thread: finalizing the interpreter under it can abort ("terminate called without
        # an active exception", exit 134), so leave now, all output flushed. uvicorn takes Ctrl-C
        # itself and returns, so this is checked on every way out.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


# Seconds uvicorn lets requests in flight finish after Ctrl-C or SIGTERM before cancelling them.
GRACE_SECONDS = 5.0


# Seconds between the server's WebSocket pings (uvicorn's default).
WS_PING_SECONDS = 20.0


def uvicorn_config(uvicorn, app, debug: bool):
    """The uvicorn.Config serve runs ``app`` with. Pings go out every ``WS_PING_SECONDS`` with no
    deadline for the pong: a realtime client faster than the model is held back by not reading
    its socket (realtime.MAX_PENDING_SECONDS), and its pong waits behind the audio it sent first,
    so uvicorn's 20 s deadline closed such a socket (1011, 40 s into a 300 s file sent at once)
    and its text was lost. A vanished peer is still found: the pings' writes fail when TCP gives up."""
    return uvicorn.Config(
        app,
        log_level="info" if debug else "warning",
        access_log=debug,
        ws="websockets-sansio",
        ws_max_size=16 * 1024 * 1024,
        ws_ping_interval=WS_PING_SECONDS,
        ws_ping_timeout=None,
        timeout_graceful_shutdown=GRACE_SECONDS,
    )


def _serve(
    args: argparse.Namespace, resolve_model: ModelResolver | None, uvicorn, server, states: list
) -> int:
    sock = listening_socket(args.host, args.port)
    transcriber = load_transcriber(args, resolve_model)
    transcriber.prompt_ids(1, args.context, args.language)  # the defaults are good before serving
    config = server.ServerConfig(
        model_id=args.served_model_name or server.default_model_id(transcriber),
        api_key=args.api_key,
        max_upload_bytes=int(args.max_upload_mb * server.MB),
        timeout=args.timeout,
        max_batch=args.max_batch,
        max_queue=args.max_queue,
        max_sessions=args.max_sessions,
        # Uploads decoded together share one decoder batch: as many chunks as uploads, at least.
        options=replace(DEFAULTS, batch_size=max(DEFAULTS.batch_size, args.max_batch)),
        default_language=args.language,
        default_context=args.context,
        allow_origins=args.allow_origin,
    )
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host

    def ready() -> None:  # said once uvicorn runs (and handles SIGTERM), so a script can wait for it
        print(
            f"serving {config.model_id} ({transcriber.provider}) on http://{shown}:{port} "
            f"(OpenAI API at http://{shown}:{port}/v1); Ctrl-C stops",
            file=sys.stderr,
            flush=True,
        )
        if not _loopback(args.host) and args.api_key is None:
            print(
                f"note: {args.host} is reachable from the network and no --api-key is set: anyone who "
                "can reach it can use it",
                file=sys.stderr,
            )

    app = server.create_app(transcriber, config, on_ready=ready)
    state = server.state_of(app)
    states.append(state)

    class Server(uvicorn.Server):
        async def shutdown(self, sockets=None) -> None:
            # Waiting uploads get 503 now rather than a cancelled task at the grace's end; the one
            # being computed gets 503 just before it, if it has not finished by then.
            state.scheduler.close(wait=False)
            asyncio.get_running_loop().call_later(GRACE_SECONDS - 1, state.scheduler.drop_running)
            await super().shutdown(sockets)

    uv = Server(uvicorn_config(uvicorn, app, args.debug))
    try:
        with quiet_loggers(("python_multipart",), logging.ERROR):  # a malformed upload's 400 says it
            uv.run(sockets=[sock])
    finally:
        sock.close()
    return 0


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def main(
    argv: list[str] | None = None,
    prog: str = "qwen-asr-edge serve",
    resolve_model: ModelResolver | None = None,
) -> int:
    """``qwen-asr-edge serve``.

    Returns:
        The exit code: 0 after Ctrl-C or SIGTERM, 2 for a missing extra, a bad bundle, model,
        option or address.
    """
    args = parse_args(argv, prog)
    return run_command(lambda: serve(args, resolve_model), debug=args.debug)
