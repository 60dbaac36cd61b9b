"""The server under load: N concurrent clients on localhost, each sending a fixed number of uploads
with OpenAI's client, while realtime sockets stream files at the same time; every response is
checked against the text of the same file transcribed alone (in-process, before the load), and
every socket's transcript against the streaming session's.

    python -m bench.server_load [--bundle DIR] [--clients 1,4,8] [--requests 4] [--sockets 2]

Prints, per concurrency: requests per second, audio seconds per second, latency median and 95th
percentile, the mean decoder batch (uploads decoded together), wrong and lost responses; the ratio
is throughput against one client measured in the same run. The last row repeats the busiest level
with ``--sockets`` realtime sockets streaming at the same time (their steps share the compute). Results go to
bench/results/server-load.{json,log}. By default the bundle is the 0.6B int4 with the real
vocabulary that bench/streaming.py builds (random weights cost what real ones do); the clips are
the pocketsphinx-testdata recordings (real speech, 2 to 10 s).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
LISTENING = re.compile(r"on (http://\S+?) \(OpenAI API")


@contextlib.contextmanager
def serving(*args: object, timeout: float = 120.0, env: dict | None = None) -> Iterator[str]:
    """``qwen-asr-edge serve --port 0 ARGS`` in a child process; yields its base URL
    (``http://127.0.0.1:PORT``) once it listens, and stops it with SIGTERM afterwards.

    Raises:
        RuntimeError: it exited or did not listen within ``timeout`` (its stderr in the message).
    """
    command = [sys.executable, "-m", "qwen_asr_edge", "serve", "--port", "0", *map(str, args)]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    lines: list[str] = []
    found = threading.Event()
    url: list[str] = []

    def read() -> None:  # drains stderr for the server's whole life, so it never blocks on it
        for line in proc.stderr:
            lines.append(line)
            match = LISTENING.search(line)
            if match and not url:
                url.append(match.group(1))
                found.set()
        found.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        if not found.wait(timeout) or not url:
            raise RuntimeError(f"serve did not start: {''.join(lines)[-2000:]}")
        yield url[0]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def pcm16(path: Path, rate: int = 24000) -> bytes:
    """A file as mono PCM16 little-endian at ``rate`` (what a realtime client sends)."""
    import soundfile as sf
    import soxr

    wav, sr = sf.read(path, dtype="float32", always_2d=True)
    wav = soxr.resample(wav.mean(axis=1), sr, rate)
    return (np.clip(wav, -1, 1) * 32767).astype("<i2").tobytes()


def pcm16_samples(data: bytes) -> np.ndarray:
    """PCM16 bytes as the float32 samples the server feeds its streaming session."""
    from qwen_asr_edge.runtime.audio import pcm_to_float

    return pcm_to_float(np.frombuffer(data, dtype="<i2"), "pcm16")


async def realtime_transcript(
    base_url: str,
    data: bytes,
    *,
    rate: int = 24000,
    block_bytes: int = 9600,
    language: str | None = None,
    pace: float = 0.0,
    api_key: str | None = None,
) -> dict:
    """Stream PCM16 ``data`` over ``/v1/realtime`` with the ``websockets`` client, commit, and
    return ``{"deltas": [...], "completed": text, "events": [types]}``."""
    import websockets

    url = base_url.replace("http://", "ws://") + "/v1/realtime?intent=transcription"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    deltas, events = [], []
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
        events.append(json.loads(await ws.recv())["type"])
        session = {
            "type": "transcription",
            "audio": {"input": {"format": {"type": "audio/pcm", "rate": rate}}},
        }
        if language:
            session["audio"]["input"]["transcription"] = {"language": language}
        await ws.send(json.dumps({"type": "session.update", "session": session}))

        async def send() -> None:
            for i in range(0, len(data), block_bytes):
                chunk = base64.b64encode(data[i : i + block_bytes]).decode()
                await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
                if pace:
                    await asyncio.sleep(block_bytes / 2 / rate / pace)
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))

        sender = asyncio.create_task(send())
        while True:
            event = json.loads(await ws.recv())
            events.append(event["type"])
            if event["type"] == "error":
                raise RuntimeError(f"realtime error: {event['error']}")
            if event["type"].endswith("transcription.delta"):
                deltas.append(event["delta"])
            if event["type"].endswith("transcription.completed"):
                await sender
                return {"deltas": deltas, "completed": event["transcript"], "events": events}


@dataclass
class LoadReport:
    clients: int
    requests: int
    seconds: float
    audio_seconds: float
    latencies: list[float] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    sockets: int = 0
    sockets_wrong: list[str] = field(default_factory=list)
    health: dict = field(default_factory=dict)
    mean_batch: float = 0.0  # uploads per decoder batch during the load

    @property
    def ok(self) -> bool:
        return not (self.wrong or self.lost or self.sockets_wrong)


def run_load(
    base_url: str,
    clips: list[tuple[Path, float, str]],
    *,
    clients: int,
    requests: int,
    sockets: list[tuple[bytes, str]] = (),
    api_key: str = "none",
) -> LoadReport:
    """``clients`` threads, each sending ``requests`` uploads (clip i of the list, round robin from a
    per-client offset) with OpenAI's client, while each of ``sockets`` (PCM16 at 24 kHz, expected
    completed text) streams once over the realtime socket.

    Args:
        clips: (path, seconds, expected text) per clip.

    Returns:
        A LoadReport: per-request latencies, wrong answers (text differs), lost ones (an error or
        no answer), wrong socket transcripts, and /health after the load.
    """
    import httpx
    from openai import OpenAI

    client = OpenAI(base_url=f"{base_url}/v1", api_key=api_key, max_retries=0, timeout=600)
    report = LoadReport(clients=clients, requests=clients * requests, seconds=0.0, audio_seconds=0.0)
    lock = threading.Lock()

    def one_client(k: int) -> None:
        for r in range(requests):
            path, seconds, expected = clips[(k + r) % len(clips)]
            started = time.perf_counter()
            try:
                with open(path, "rb") as f:
                    text = client.audio.transcriptions.create(file=f, model="any", response_format="text")
            except Exception as e:  # a lost request: recorded, the load goes on
                with lock:
                    report.lost.append(f"client {k} request {r} ({path.name}): {type(e).__name__}: {e}")
                continue
            elapsed = time.perf_counter() - started
            with lock:
                report.latencies.append(elapsed)
                report.audio_seconds += seconds
                if text != expected + "\n":
                    report.wrong.append(f"client {k} request {r} ({path.name}): {text!r} != {expected!r}")

    def one_socket(i: int, data: bytes, expected: str) -> None:
        try:
            got = asyncio.run(realtime_transcript(base_url, data))
        except Exception as e:
            with lock:
                report.sockets_wrong.append(f"socket {i}: {type(e).__name__}: {e}")
            return
        joined = "".join(got["deltas"])
        if got["completed"] != expected or joined != expected:
            with lock:
                report.sockets_wrong.append(
                    f"socket {i}: {got['completed']!r} (deltas {joined!r}) != {expected!r}"
                )

    before = httpx.get(f"{base_url}/health", timeout=30).json()
    started = time.perf_counter()
    with ThreadPoolExecutor(clients + len(sockets)) as pool:
        futures = [pool.submit(one_client, k) for k in range(clients)]
        futures += [pool.submit(one_socket, i, data, text) for i, (data, text) in enumerate(sockets)]
        for f in futures:
            f.result()
    report.seconds = time.perf_counter() - started
    report.sockets = len(sockets)
    after = httpx.get(f"{base_url}/health", timeout=30).json()
    report.health = after
    batches = after["batches"] - before["batches"]
    report.mean_batch = (after["batched_requests"] - before["batched_requests"]) / batches if batches else 0.0
    return report


def expected_texts(bundle: Path | None, clips: list[Path]) -> tuple[list[tuple[Path, float, str]], object]:
    """Each clip's text transcribed alone in-process (the server's defaults), and the Transcriber."""
    import soundfile as sf

    from qwen_asr_edge.runtime import Transcriber, demo_bundle

    asr = Transcriber(bundle or demo_bundle())
    out = []
    for path in clips:
        out.append((path, sf.info(path).duration, asr.transcribe(path).text))
    return out, asr


def stream_text(asr, data: bytes, rate: int = 24000) -> str:
    """The streaming session's final committed text for PCM16 ``data`` (the server's defaults)."""
    session = asr.stream()
    session.feed(pcm16_samples(data), rate)
    return session.finish().committed


def main(argv: list[str] | None = None) -> int:
    from bench.utils import cpu, table

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", type=Path, help="default: the 0.6B int4 bench bundle (built if missing)")
    p.add_argument("--clients", default="1,4,8")
    p.add_argument("--requests", type=int, default=4, help="uploads per client")
    p.add_argument("--sockets", type=int, default=2, help="realtime sockets streaming during the load")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    args = p.parse_args(argv)
    bundle = args.bundle
    if bundle is None:
        from bench.bundles import build

        vocab = Path(__file__).resolve().parent.parent / ".cache" / "qwen3-vocab"
        bundle = build(Path(".cache/bench"), "0.6B", ["int4"], vocab_dir=vocab if vocab.is_dir() else None)
        bundle = bundle["int4"].path
    speech = sorted(Path("/usr/share/pocketsphinx/test/data/librivox").glob("*.wav"))
    clips, asr = expected_texts(bundle, speech)
    sockets = [(pcm16(path), None) for path in speech[: args.sockets]]
    sockets = [(data, stream_text(asr, data)) for data, _ in sockets]
    del asr
    rows, results = [], []
    levels = [(int(n), []) for n in args.clients.split(",")]
    if sockets:  # the busiest level again, with realtime sockets streaming meanwhile
        levels.append((levels[-1][0], sockets))
    with serving("--bundle", bundle, "--threads", args.threads) as url:
        for n, streams in levels:
            report = run_load(url, clips, clients=n, requests=args.requests, sockets=streams)
            results.append(asdict(report) | {"ok": report.ok})
            print(f"{n} clients: {len(report.latencies)} answers, ok={report.ok}", file=sys.stderr)
    base = results[0]["requests"] / results[0]["seconds"]
    for r in results:
        lat = r["latencies"]
        rate = r["requests"] / r["seconds"]
        rows.append(
            [
                r["clients"],
                r["requests"],
                r["sockets"],
                f"{rate:.2f}",
                f"{r['audio_seconds'] / r['seconds']:.1f}",
                f"{statistics.median(lat):.2f}" if lat else "-",
                f"{np.percentile(lat, 95):.2f}" if lat else "-",
                f"{r['mean_batch']:.1f}",
                len(r["wrong"]) + len(r["sockets_wrong"]),
                len(r["lost"]),
                f"{rate / base:.2f}x",
            ]
        )
    headers = [
        "clients",
        "uploads",
        "sockets",
        "req/s",
        "audio s/s",
        "p50 s",
        "p95 s",
        "batch",
        "wrong",
        "lost",
        "vs 1",
    ]
    text = table(headers, rows)
    machine = cpu()
    log = f"bundle {bundle}; CPU {machine}\n{text}"
    print(log)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "server-load.log").write_text(log + "\n")
    (RESULTS / "server-load.json").write_text(
        json.dumps({"bundle": str(bundle), "cpu": machine, "runs": results}, indent=2) + "\n"
    )
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
