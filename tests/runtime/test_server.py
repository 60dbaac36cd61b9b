"""``qwen-asr-edge serve`` as clients use it: a server started on a free port in its own process,
OpenAI's own Python client for uploads and the realtime socket, the ``websockets`` client for raw
events, and what each answers checked against the CLI on the same files or the streaming session
on the same samples (never hard-coded text)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from bench.server_load import pcm16, realtime_transcript, run_load, serving, stream_text
from qwen_asr_edge.runtime import Transcriber, demo_bundle, demo_examples
from tests.support import run_cli

pytest.importorskip("starlette")
openai = pytest.importorskip("openai")
websockets = pytest.importorskip("websockets")

EXAMPLES = sorted(Path(e["audio"]) for e in demo_examples())
FORMATS = ("json", "text", "srt", "vtt", "verbose_json")


@pytest.fixture(scope="module")
def server() -> str:
    with serving() as url:
        yield url


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server}/v1", api_key="none", max_retries=0)


@pytest.fixture(scope="module")
def asr() -> Transcriber:
    return Transcriber(demo_bundle())


@pytest.fixture(scope="module")
def cli_outputs(tmp_path_factory) -> dict[str, dict[str, str]]:
    """What ``qwen-asr-edge transcribe --format F`` writes for each example: {format: {name: text}}."""
    out = {}
    for fmt in ("txt", "srt", "vtt", "json"):
        folder = tmp_path_factory.mktemp(fmt)
        done = run_cli("transcribe", *EXAMPLES, "--format", fmt, "--output-dir", folder)
        assert done.returncode == 0, done.stderr
        out[fmt] = {p.name: (folder / f"{p.stem}.{fmt}").read_text() for p in EXAMPLES}
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_openai_client_gives_the_cli_text_in_every_format(client, cli_outputs, fmt):
    for path in EXAMPLES:
        with open(path, "rb") as f:
            got = client.audio.transcriptions.create(file=f, model="qwen3-asr-demo", response_format=fmt)
        txt = cli_outputs["txt"][path.name]
        if fmt == "json":
            assert got.text + "\n" == txt
            assert got.usage.seconds == pytest.approx(sf.info(path).duration, abs=1e-3)
        elif fmt == "text":
            assert got == txt
        elif fmt in ("srt", "vtt"):
            assert got == cli_outputs[fmt][path.name]
        else:
            cli = json.loads(cli_outputs["json"][path.name])
            assert got.text == cli["text"]
            assert got.language == cli["language"].lower()
            assert got.duration == pytest.approx(cli["duration"])
            assert [(s.start, s.end, s.text) for s in got.segments] == [
                (s["start"], s["end"], s["text"]) for s in cli["segments"]
            ]
            assert all(s.avg_logprob is not None and s.avg_logprob <= 0 for s in got.segments)
            assert got.words is None


def test_stream_true_sends_deltas_that_make_the_text(client, cli_outputs):
    for path in EXAMPLES:
        with open(path, "rb") as f:
            events = list(client.audio.transcriptions.create(file=f, model="x", stream=True))
        assert [e.type for e in events][-1] == "transcript.text.done"
        deltas = "".join(e.delta for e in events if e.type == "transcript.text.delta")
        assert deltas == events[-1].text
        assert events[-1].text + "\n" == cli_outputs["txt"][path.name]


def test_language_and_prompt_reach_the_model(client, asr):
    path = EXAMPLES[0]
    for language, prompt in (("de", ""), ("German", "Lautstärke"), (None, "shopping list")):
        fields = {"language": language} if language else {}
        with open(path, "rb") as f:
            got = client.audio.transcriptions.create(file=f, model="x", prompt=prompt, **fields)
        assert got.text == asr.transcribe(path, language=language, context=prompt).text


def test_models_and_health(client, server):
    assert [m.id for m in client.models.list()] == ["qwen3-asr-demo"]
    assert client.models.retrieve("qwen3-asr-demo").id == "qwen3-asr-demo"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("whisper-1")
    health = httpx.get(f"{server}/health").json()
    assert health["status"] == "ok" and health["provider"] == "CPUExecutionProvider"


def _post(server: str, files=None, data=None, headers=None) -> httpx.Response:
    return httpx.post(
        f"{server}/v1/audio/transcriptions", files=files, data=data, headers=headers, timeout=60
    )


def _error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert "\n" not in error["message"]
    return error


def test_bad_uploads_get_openai_errors_that_name_the_file(server, tmp_path):
    junk = tmp_path / "notes.wav"
    junk.write_bytes(b"this is not audio at all" * 10)
    with open(junk, "rb") as f:
        error = _error(_post(server, files={"file": ("notes.wav", f)}), 400)
    assert error["message"].startswith("notes.wav: ") and error["param"] == "file"
    empty = _error(_post(server, files={"file": ("empty.wav", b"")}), 400)
    assert empty["message"].startswith("empty.wav: ")
    assert _error(_post(server, data={"model": "x"}, files={"x": ("a", b"1")}), 400)["param"] == "file"
    as_text = _error(_post(server, files={"file": (None, "talk.wav")}), 400)  # curl -F file=talk.wav
    assert as_text["message"] == "the 'file' field is text, not a file upload (curl: -F file=@PATH)"
    two = _error(_post(server, files=[("file", ("a.wav", b"1")), ("file", ("b.wav", b"2"))]), 400)
    assert two["message"].startswith("the form could not be read: ") and "400" not in two["message"]
    assert "multipart" in _error(_post(server, data={"model": "x"}), 400)["message"]
    wav = EXAMPLES[0].read_bytes()
    cases = [
        ({"response_format": "mp3"}, "response_format"),
        ({"language": "Klingon"}, "language"),
        ({"timestamp_granularities[]": "word"}, "timestamp_granularities"),
        (
            {"response_format": "verbose_json", "timestamp_granularities[]": "sentence"},
            "timestamp_granularities",
        ),
        ({"stream": "maybe"}, "stream"),
        ({"stream": "true", "response_format": "srt"}, "stream"),
        ({"temperature": "5"}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
    ]
    for data, param in cases:
        error = _error(_post(server, files={"file": ("a.wav", wav)}, data=data), 400)
        assert error["param"] == param, (data, error)
    # empty fields, as clients that send every field do, are not given: temperature as language
    answer = _post(server, files={"file": ("a.wav", wav)}, data={"temperature": "", "language": ""})
    assert answer.status_code == 200, answer.text
    # A name with a path or control characters is shown as its last part, on one line.
    with open(junk, "rb") as f:
        error = _error(_post(server, files={"file": ("../../x/evil\nname.wav", f)}), 400)
    assert error["message"].startswith("evil") and "x/" not in error["message"]
    # A prompt too long for the model: the client's remedy is the prompt (it was told to lower
    # --max-chunk-seconds and --max-new-tokens, which serve does not even take).
    error = _error(_post(server, files={"file": ("a.wav", wav)}, data={"prompt": "word " * 70000}), 400)
    assert error["param"] == "prompt" and error["message"].endswith("send a shorter prompt"), error
    assert "--" not in error["message"]


def test_a_format_the_server_cannot_read_is_415_without_its_paths_or_install_advice(tmp_path):
    """Without PyAV ([media]), an .m4a upload was refused with the server's temp path and "pip
    install" advice for the client; that advice is the server owner's, in the server's log."""
    blocker = tmp_path / "no-av"
    blocker.mkdir()
    (blocker / "av.py").write_text("raise ImportError('PyAV is not installed')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")])}
    with serving(env=env) as url:
        error = _error(_post(url, files={"file": ("memo.m4a", b"\0" * 1000)}), 415)
    assert error["message"] == (
        "memo.m4a: this server cannot read .m4a files (its install lacks the [media] extra); "
        "send WAV, FLAC, MP3 or OGG"
    )
    assert (error["param"], error["code"]) == ("file", "unsupported_format")


def test_the_log_names_an_upload_as_the_client_did(asr, tmp_path, caplog):
    """A truncated upload's warning named the server's copy (a temp folder gone by the time anyone
    reads the log), not the file the client sent."""
    from starlette.testclient import TestClient

    from qwen_asr_edge.runtime.server import create_app

    whole = tmp_path / "whole.wav"
    sf.write(whole, sf.read(EXAMPLES[0], dtype="float32")[0], 16000, subtype="PCM_16")
    cut = whole.read_bytes()[: whole.stat().st_size * 2 // 3]
    app = create_app(asr)
    with TestClient(app) as client, caplog.at_level("WARNING", logger="qwen_asr_edge"):
        answer = client.post("/v1/audio/transcriptions", files={"file": ("cut.wav", cut)})
        uploads = str(app.server_state.uploads)
    assert answer.status_code == 200, answer.text
    warnings = [r.getMessage() for r in caplog.records if ": truncated:" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith("upload cut.wav: truncated:"), warnings
    assert not any(uploads in r.getMessage() for r in caplog.records)


def test_word_timestamps_need_an_aligner(server):
    wav = EXAMPLES[0].read_bytes()
    data = {"response_format": "verbose_json", "timestamp_granularities[]": "word"}
    error = _error(_post(server, files={"file": ("a.wav", wav)}, data=data), 400)
    assert "aligner" in error["message"]


def test_unknown_routes_and_methods_answer_json(server):
    assert _error(httpx.get(f"{server}/v1/nothing"), 404)["message"] == "no route /v1/nothing"
    assert _error(httpx.get(f"{server}/v1/audio/transcriptions"), 405)
    assert "WebSocket" in _error(httpx.get(f"{server}/v1/realtime"), 426)["message"]


def test_a_trailing_slash_is_served_not_redirected(server, asr):
    """POST /v1/audio/transcriptions/ was a 307 to the route without the slash: curl and httpx do not
    follow it, and the upload was lost."""
    with open(EXAMPLES[0], "rb") as f:
        answer = httpx.post(f"{server}/v1/audio/transcriptions/", files={"file": f}, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json()["text"] == asr.transcribe(EXAMPLES[0]).text
    assert httpx.get(f"{server}/v1/models/").json()["data"][0]["id"] == "qwen3-asr-demo"


def test_a_client_that_leaves_drops_its_queued_job():
    """A request whose client disconnects stops waiting, and its job, not yet started, never runs."""
    from qwen_asr_edge.runtime.server import _unless_client_leaves

    ran = []

    class Gone:  # what Starlette's request.receive() gives once the client has hung up
        async def receive(self):
            return {"type": "http.disconnect"}

    async def job():
        await asyncio.sleep(0.5)
        ran.append(1)

    async def run():
        result = await _unless_client_leaves(Gone(), job())
        await asyncio.sleep(0.7)
        return result

    assert asyncio.run(run()) is None and ran == []


def test_browsers_may_call_it_from_allowed_origins():
    with serving("--allow-origin", "http://localhost:5173", "--api-key", "k") as url:
        preflight = httpx.options(
            f"{url}/v1/audio/transcriptions",
            headers={
                "Origin": "http://localhost:5173",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "http://localhost:5173"
        answer = httpx.get(f"{url}/v1/models", headers={"Origin": "http://localhost:5173"})
        assert answer.status_code == 401 and answer.headers["access-control-allow-origin"]
        other = httpx.get(f"{url}/v1/models", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_api_key_size_limit_and_timeout(tmp_path):
    wav = EXAMPLES[0].read_bytes()
    with serving("--api-key", "s3cret", "--max-upload-mb", "0.5") as url:
        assert _error(_post(url, files={"file": ("a.wav", wav)}), 401)["type"] == "authentication_error"
        bad = openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()
        good = openai.OpenAI(base_url=f"{url}/v1", api_key="s3cret", max_retries=0)
        assert good.models.list().data
        assert httpx.get(f"{url}/health").status_code == 200  # probes need no key
        big = np.zeros(16000 * 33, dtype=np.int16).tobytes()  # 1.06 MB
        headers = {"Authorization": "Bearer s3cret"}
        error = _error(_post(url, files={"file": ("big.raw", big)}, headers=headers), 413)
        assert "takes at most 0.5 MB" in error["message"]

        # Without Content-Length (chunked), the limit holds as the bytes come.
        def chunks():
            yield b"--b\r\nContent-Disposition: form-data; name=file; filename=x.wav\r\n\r\n"
            for _ in range(80):
                yield b"\0" * 8192
            yield b"\r\n--b--\r\n"

        response = httpx.post(
            f"{url}/v1/audio/transcriptions",
            content=chunks(),
            headers={**headers, "Content-Type": "multipart/form-data; boundary=b"},
        )
        assert _error(response, 413)["code"] == "request_too_large"
        # curl reads the answer while it sends: the refused rest of a chunked upload (here 20 MB)
        # is read before the socket closes, else curl saw a reset and no body (2 of 5 tries).
        zeros = tmp_path / "zeros.raw"
        zeros.write_bytes(bytes(20_000_000))
        for key, status in [("s3cret", 413)] * 5 + [("wrong", 401)] * 2:
            answer = subprocess.run(
                ["curl", "-sS", "-H", "Transfer-Encoding: chunked", "-H", f"Authorization: Bearer {key}",
                 "-F", f"file=@{zeros}", "-w", "\n%{http_code}", f"{url}/v1/audio/transcriptions"],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert answer.returncode == 0, answer.stderr
            body, code = answer.stdout.rsplit("\n", 1)
            assert int(code) == status and json.loads(body)["error"]["message"], answer.stdout
        # The realtime socket takes the key as a header or as OpenAI's subprotocol.
        with pytest.raises(websockets.InvalidStatus) as refused:
            asyncio.run(realtime_transcript(url, pcm16(EXAMPLES[0])))
        assert refused.value.response.status_code == 401
        assert json.loads(refused.value.response.body)["error"]["code"] == "invalid_api_key"
        got = asyncio.run(realtime_transcript(url, pcm16(EXAMPLES[0]), api_key="s3cret"))
        assert got["completed"]

        async def by_subprotocol():
            ws_url = url.replace("http", "ws") + "/v1/realtime"
            protocols = ["realtime", "openai-insecure-api-key.s3cret"]
            async with websockets.connect(ws_url, subprotocols=protocols) as ws:
                return json.loads(await ws.recv())["type"], ws.subprotocol

        assert asyncio.run(by_subprotocol()) == ("session.created", "realtime")


# -- realtime -------------------------------------------------------------------------------------


def test_realtime_socket_gives_the_streaming_session_text(server, asr):
    for path in EXAMPLES:
        data = pcm16(path)
        got = asyncio.run(realtime_transcript(server, data))
        expected = stream_text(asr, data)
        assert got["completed"] == expected != ""
        assert "".join(got["deltas"]) == expected
        assert "<asr_text>" not in expected and not expected.startswith("language")
        assert got["events"][:2] == ["session.created", "session.updated"]
        assert got["events"][-1] == "conversation.item.input_audio_transcription.completed"


@pytest.mark.slow
def test_a_long_fast_stream_is_held_back_not_lost(server, asr, speech_files, tmp_path):
    """A minute of speech sent as fast as the socket takes it: more than the server keeps waiting
    (realtime.MAX_PENDING_SECONDS), across the session's utterance cut (30 s); the text is the
    streaming session's all the same."""
    from qwen_asr_edge.runtime.realtime import MAX_PENDING_SECONDS

    wav = np.concatenate([sf.read(p, dtype="float32")[0] for p in speech_files] * 3)[: 16000 * 65]
    assert wav.size / 16000 > MAX_PENDING_SECONDS + 30
    path = tmp_path / "long.wav"
    sf.write(path, wav, 16000)
    data = pcm16(path)
    got = asyncio.run(realtime_transcript(server, data, block_bytes=48000))
    assert got["completed"] == stream_text(asr, data)
    assert "".join(got["deltas"]) == got["completed"]


def test_a_held_back_client_is_not_closed_by_the_keepalive_ping(asr, speech_files, tmp_path):
    """A client that sends faster than the model decodes waits, unread, behind the audio it sent, and
    so does its pong: uvicorn's ping deadline closed the socket (1011) and the text was lost. Run
    with serve's own uvicorn settings, its ping interval (and any deadline) scaled down to 0.2 s."""
    import socket
    import threading

    import uvicorn

    from qwen_asr_edge.runtime.serve_cli import uvicorn_config
    from qwen_asr_edge.runtime.server import create_app

    config = uvicorn_config(uvicorn, create_app(asr), debug=False)
    config.ws_ping_interval = 0.2
    if config.ws_ping_timeout is not None:
        config.ws_ping_timeout = 0.2
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        # More than the server keeps waiting (realtime.MAX_PENDING_SECONDS): it stops reading.
        wav = np.concatenate([sf.read(p, dtype="float32")[0] for p in speech_files] * 3)[: 16000 * 65]
        sf.write(tmp_path / "talk.wav", wav, 16000)
        data = pcm16(tmp_path / "talk.wav")
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        got = asyncio.run(realtime_transcript(url, data, block_bytes=48000))
        assert got["completed"] == stream_text(asr, data)
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def test_openai_realtime_client_streams_a_file(server, asr):
    data = pcm16(EXAMPLES[1])

    async def run():
        client = openai.AsyncOpenAI(base_url=f"{server}/v1", api_key="none")
        async with client.realtime.connect(model="qwen3-asr-demo") as conn:
            await conn.session.update(
                session={"type": "transcription", "audio": {"input": {"turn_detection": None}}}
            )
            for i in range(0, len(data), 4800):
                await conn.input_audio_buffer.append(audio=base64.b64encode(data[i : i + 4800]).decode())
            await conn.input_audio_buffer.commit()
            # A second item on the same socket: its own text, the first item as its predecessor.
            await conn.input_audio_buffer.append(audio=base64.b64encode(data).decode())
            await conn.input_audio_buffer.commit()
            completed, committed = [], []
            async for event in conn:
                if event.type == "input_audio_buffer.committed":
                    committed.append((event.item_id, event.previous_item_id))
                if event.type == "conversation.item.input_audio_transcription.completed":
                    completed.append((event.item_id, event.transcript))
                    if len(completed) == 2:
                        return committed, completed

    committed, completed = asyncio.run(run())
    expected = stream_text(asr, data)
    assert [t for _, t in completed] == [expected, expected]
    assert committed[0][1] is None and committed[1][1] == committed[0][0]
    assert [i for i, _ in completed] == [i for i, _ in committed]


def test_two_concurrent_sockets_never_mix(server, asr):
    a, b = pcm16(EXAMPLES[0]), pcm16(EXAMPLES[1])

    async def both():
        return await asyncio.gather(
            realtime_transcript(server, a, block_bytes=4800, pace=4.0),
            realtime_transcript(server, b, block_bytes=4800, pace=4.0),
        )

    got_a, got_b = asyncio.run(both())
    assert got_a["completed"] == stream_text(asr, a)
    assert got_b["completed"] == stream_text(asr, b)
    assert got_a["completed"] != got_b["completed"]


def test_a_disconnect_mid_stream_frees_the_session(server, asr):
    data = pcm16(EXAMPLES[0])

    async def leave_early():
        url = server.replace("http", "ws") + "/v1/realtime"
        async with websockets.connect(url) as ws:
            await ws.recv()
            for i in range(0, len(data) // 2, 4800):
                chunk = base64.b64encode(data[i : i + 4800]).decode()
                await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
            assert httpx.get(f"{server}/health").json()["realtime_sessions"] >= 1
        # closed without a commit

    asyncio.run(leave_early())
    for _ in range(100):
        health = httpx.get(f"{server}/health").json()
        if health["realtime_sessions"] == 0 and health["queued"] == 0 and not health["running"]:
            break
        asyncio.run(asyncio.sleep(0.1))
    assert health["realtime_sessions"] == 0 and health["queued"] == 0
    # and the server goes on serving new sessions
    assert asyncio.run(realtime_transcript(server, data))["completed"] == stream_text(asr, data)


def test_realtime_errors_keep_the_socket_open(server):
    async def run():
        url = server.replace("http", "ws") + "/v1/realtime"
        async with websockets.connect(url) as ws:
            await ws.recv()
            sent = [
                "not json",
                json.dumps({"type": "response.create"}),
                json.dumps({"type": "input_audio_buffer.commit"}),
                json.dumps({"type": "input_audio_buffer.append", "audio": "***"}),
                json.dumps(
                    {
                        "type": "session.update",
                        "session": {
                            "type": "transcription",
                            "audio": {"input": {"turn_detection": {"type": "server_vad"}}},
                        },
                    }
                ),
                json.dumps(
                    {"type": "session.update", "session": {"audio": {"input": {"format": {"rate": 100}}}}}
                ),
                json.dumps(
                    {
                        "type": "transcription_session.update",
                        "session": {"input_audio_transcription": {"language": "xx"}},
                    }
                ),
                # Found by a new user: each of these raised AttributeError in the handler, and the
                # socket closed (1000) without an error event.
                *(
                    json.dumps({"type": "session.update", "session": session})
                    for session in (
                        {"audio": {"input": {"format": "pcm16"}}},
                        {"audio": "x"},
                        {"audio": {"input": [1]}},
                        {"audio": {"input": {"transcription": "en"}}},
                        {"audio": {"input": {"transcription": {"language": 7}}}},
                    )
                ),
                json.dumps(
                    {"type": "transcription_session.update", "session": {"input_audio_transcription": "de"}}
                ),
                # A prompt too long for the model: refused here, not at the item's first audio.
                json.dumps(
                    {
                        "type": "session.update",
                        "session": {"audio": {"input": {"transcription": {"prompt": "word " * 100000}}}},
                    }
                ),
            ]
            codes = []
            for text in sent:
                await ws.send(text)
                event = json.loads(await ws.recv())
                assert event["type"] == "error", event
                codes.append(event["error"]["code"])
            await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
            codes.append(json.loads(await ws.recv())["error"]["code"])
            # the rate cannot change inside an item
            chunk = base64.b64encode(b"\0\0" * 2400).decode()
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
            rate = {"type": "session.update", "session": {"audio": {"input": {"format": {"rate": 16000}}}}}
            await ws.send(json.dumps(rate))
            codes.append(json.loads(await ws.recv())["error"]["code"])
            await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
            assert json.loads(await ws.recv())["type"] == "input_audio_buffer.cleared"
            await ws.send(json.dumps(rate))
            assert json.loads(await ws.recv())["session"]["audio"]["input"]["format"]["rate"] == 16000
            # still open, still working: a beta-style update is answered in kind
            await ws.send(
                json.dumps(
                    {"type": "transcription_session.update", "session": {"input_audio_format": "pcm16"}}
                )
            )
            assert json.loads(await ws.recv())["type"] == "transcription_session.updated"
            return codes

    assert asyncio.run(run()) == [
        "invalid_json",
        "unsupported_event",
        "input_audio_buffer_commit_empty",
        "invalid_audio",
        "unsupported_turn_detection",
        "unsupported_format",
        "unsupported_language",
        *["invalid_event"] * 6,
        "invalid_prompt",
        "unsupported_session_type",
        "rate_change_in_item",
    ]


def test_too_many_sockets_are_refused_with_1013():
    async def run(url):
        ws_url = url.replace("http", "ws") + "/v1/realtime"
        async with websockets.connect(ws_url) as first:
            assert json.loads(await first.recv())["type"] == "session.created"
            async with websockets.connect(ws_url) as second:
                event = json.loads(await second.recv())
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await second.recv()
                return event, closed.value.rcvd.code

    with serving("--max-sessions", "1") as url:
        event, code = asyncio.run(run(url))
    assert event["error"]["code"] == "server_busy" and code == 1013


# -- load -----------------------------------------------------------------------------------------


def test_bounded_load_every_answer_right_nothing_mixed(server, asr):
    """8 clients x 3 uploads of 2 files while 2 sockets stream: every text right, none lost, and the
    uploads that waited together were decoded in shared batches."""
    clips = [(p, sf.info(p).duration, asr.transcribe(p).text) for p in EXAMPLES]
    sockets = [(pcm16(p), stream_text(asr, pcm16(p))) for p in EXAMPLES]
    report = run_load(server, clips, clients=8, requests=3, sockets=sockets)
    assert not report.lost and not report.wrong and not report.sockets_wrong, report
    assert len(report.latencies) == 24
    assert report.health["largest_batch"] > 1  # concurrent uploads shared a decoder batch


# -- the command ----------------------------------------------------------------------------------


def test_serve_refuses_bad_options_and_a_taken_port():
    for args, says in (
        (["--port", "70000"], "--port"),
        (["--max-batch", "0"], "--max-batch"),
        (["--timeout", "nan"], "--timeout"),
        (["--api-key", ""], "empty"),
    ):
        done = run_cli("serve", *args)
        assert done.returncode == 2 and says in done.stderr, done.stderr
    with serving() as url:
        port = url.rsplit(":", 1)[1]
        done = run_cli("serve", "--port", port)
        assert done.returncode == 2
        assert done.stderr.strip().splitlines()[-1].startswith(f"error: cannot listen on 127.0.0.1:{port}")


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_stop_the_server_cleanly(stop, python_sigint):
    command = [sys.executable, "-m", "qwen_asr_edge", "serve", "--port", "0"]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if "serving" in line:
            break
    proc.send_signal(stop)
    assert proc.wait(30) == 0
    rest = proc.stderr.read()
    assert "Traceback" not in rest and rest.strip().splitlines()[-1] == "stopped"


def test_ctrl_c_while_a_socket_streams_stops_cleanly(speech_files, tmp_path, python_sigint):
    """Found by a new user: Ctrl-C while a realtime client streamed logged "realtime step failed"
    tracebacks (Busy; a send to the closed socket) and the receive loop's WebSocketDisconnected."""
    wav = np.concatenate([sf.read(p, dtype="float32")[0] for p in speech_files] * 4)[: 16000 * 100]
    sf.write(tmp_path / "long.wav", wav, 16000)
    data = pcm16(tmp_path / "long.wav")
    command = [sys.executable, "-m", "qwen_asr_edge", "serve", "--port", "0"]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if "serving" in line:
            url = re.search(r"on (http://\S+?) \(OpenAI", line).group(1)
            break

    async def stream_then_stop():
        sending = asyncio.ensure_future(realtime_transcript(url, data, block_bytes=48000))
        await asyncio.sleep(3)  # the socket is being decoded, 30 s of audio waiting
        proc.send_signal(signal.SIGINT)
        with contextlib.suppress(Exception):  # closed by the server (1012): no completed text
            await sending

    asyncio.run(stream_then_stop())
    assert proc.wait(30) == 0
    rest = proc.stderr.read()
    assert "Traceback" not in rest and "failed" not in rest and rest.strip().splitlines()[-1] == "stopped", (
        rest
    )


def test_stopping_with_uploads_waiting_answers_each_and_leaves_nothing(asr, speech_files, tmp_path):
    """SIGTERM while long uploads wait: each gets its text or a 503 in OpenAI's shape (a stream
    gets an error event), no traceback, and no upload left in the temporary folder."""
    long = tmp_path / "long.wav"
    sf.write(long, np.concatenate([sf.read(p, dtype="float32")[0] for p in speech_files] * 6), 16000)
    expected = asr.transcribe(long).text
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    command = [sys.executable, "-m", "qwen_asr_edge", "serve", "--port", "0", "--max-batch", "1"]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    for line in proc.stderr:
        if "serving" in line:
            url = re.search(r"on (http://\S+) ", line).group(1)
            break

    def upload(stream: bool) -> httpx.Response:
        with open(long, "rb") as f:
            data = {"response_format": "text"} | ({"stream": "true"} if stream else {})
            return httpx.post(f"{url}/v1/audio/transcriptions", files={"file": f}, data=data, timeout=120)

    with ThreadPoolExecutor(4) as pool:
        answers = [pool.submit(upload, i == 3) for i in range(4)]
        for _ in range(200):
            if httpx.get(f"{url}/health").json()["queued"] >= 2:
                break
            time.sleep(0.05)
        proc.terminate()
        answers = [a.result() for a in answers]
    assert proc.wait(30) == 0
    log = proc.stderr.read()
    assert "Traceback" not in log and "never retrieved" not in log, log
    busy = 0
    for response in answers[:3]:
        if response.status_code == 200:
            assert response.text == expected + "\n"
        else:
            busy += 1
            assert _error(response, 503)["code"] == "server_busy"
    stream = answers[3].text
    assert '"type": "error"' in stream or '"transcript.text.done"' in stream
    assert busy + ('"server_busy"' in stream) >= 2  # the ones still waiting were refused
    assert not list(tmp_path.glob("qwen-asr-edge-*")), list(tmp_path.iterdir())


def test_a_killed_servers_upload_folder_is_removed_by_the_next(tmp_path):
    """A server killed outright (SIGKILL, the OOM killer) cannot delete its uploads' folder, which
    may hold users' audio: the next server started on the machine deletes it and says so, and
    leaves a running server's folder alone."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    with serving(env=env) as url:  # the running one
        (running,) = tmp_path.glob("qwen-asr-edge-uploads-*")
        command = [sys.executable, "-m", "qwen_asr_edge", "serve", "--port", "0"]
        killed = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
        for line in killed.stderr:
            if "serving" in line:
                break
        killed.kill()
        killed.wait(30)
        killed.stderr.close()
        (left,) = set(tmp_path.glob("qwen-asr-edge-uploads-*")) - {running}
        (left / "upload.wav").write_bytes(b"RIFF")
        older = tmp_path / "qwen-asr-edge-server-abcdefgh"  # an older version's, which took no lock
        older.mkdir()
        nxt = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
        try:
            lines = []
            for line in nxt.stderr:
                lines.append(line)
                if "serving" in line:
                    break
        finally:
            nxt.terminate()
            nxt.wait(30)
            nxt.stderr.close()
        assert f"removing {left}: left by a run that was killed\n" in lines, lines
        assert not left.exists() and running.is_dir() and older.is_dir()
        assert httpx.get(f"{url}/health").status_code == 200


@pytest.mark.slow
def test_word_timestamps_through_the_aligner_bundle(bundles, tmp_path):
    """A tiny ASR bundle with the forced aligner: verbose_json words equal the CLI's."""
    bundle = bundles["untied-full-aligner"]
    speech = EXAMPLES[0]
    done = run_cli(
        "transcribe", speech, "--bundle", bundle, "--word-timestamps", "--format", "json", "--language", "en"
    )
    assert done.returncode == 0, done.stderr
    (cli,) = json.loads(done.stdout)
    with serving("--bundle", bundle) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)
        with open(speech, "rb") as f:
            got = client.audio.transcriptions.create(
                file=f,
                model="x",
                language="en",
                response_format="verbose_json",
                timestamp_granularities=["word", "segment"],
            )
    words = [w for s in cli["segments"] for w in s.get("words", [])]
    assert got.text == cli["text"]
    assert words, "the tiny model wrote no words to align"
    assert [(w.word, w.start, w.end) for w in got.words] == [(w["text"], w["start"], w["end"]) for w in words]


def test_upload_name_is_safe():
    from qwen_asr_edge.runtime.server import _upload_name

    assert _upload_name("C:\\Users\\me\\talk.m4a") == "talk.m4a"
    assert _upload_name("../../etc/passwd") == "passwd"
    assert _upload_name("..") == "audio"
    assert _upload_name(None) == "audio"
    assert Path(_upload_name("a\x00b.wav")).name == "ab.wav"
