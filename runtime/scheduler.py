"""One compute thread for a server: every piece of model work queues for it, and whole recordings
that wait together are decoded in one ``Transcriber.transcribe_batch`` call (one decoder batch
shared by concurrent requests).

One thread, not a pool: onnxruntime already spreads one call over every core, so two calls at once
only contend for them (and for memory: a KV cache each), while requests that wait together batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import QwenAsrEdgeError
from .options import TranscriptionOptions
from .results import Transcript

SHUTTING_DOWN = "the server is shutting down"
TOO_LONG = "the request took longer than the server's timeout"


class Busy(QwenAsrEdgeError, RuntimeError):
    """The queue is full: the server takes no more work until some finishes."""


class Expired(QwenAsrEdgeError, TimeoutError):
    """A job's deadline passed before its result came."""


@dataclass(eq=False)
class _Job:
    run: Callable[[], Any] | None  # a call; None for a recording to transcribe (the fields below)
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    deadline: float  # time.monotonic(); inf for none
    audio: Any = None
    language: str | None = None
    context: str = ""
    options: TranscriptionOptions | None = None
    source: str = ""
    abandoned: bool = False

    @property
    def batchable(self) -> bool:
        # A long file stays a path (read a block at a time): it is decoded alone.
        return self.run is None and not isinstance(self.audio, Path)


@dataclass
class SchedulerStats:
    """Counters since start, for /health and the load benchmark."""

    batches: int = 0  # transcription calls (transcribe_batch)
    batched: int = 0  # recordings decoded in them (batched / batches: the mean batch)
    largest_batch: int = 0
    calls: int = 0  # other jobs (stream steps, lazy transcriptions)
    expired: int = 0  # dropped before they ran: the deadline passed, or the caller went away
    busy_refusals: int = 0


class Scheduler:
    """A queue of model work and the one thread that does it.

    Args:
        transcriber: The Transcriber all work runs on.
        max_batch: Recordings decoded together at most (each cut into chunks, decoded
            ``options.batch_size`` chunks at a time).
        max_queue: Jobs waiting at most; beyond, ``Busy`` is raised at once.
    """

    def __init__(self, transcriber, max_batch: int = 8, max_queue: int = 64):
        if max_batch < 1 or max_queue < 1:
            raise ValueError("max_batch and max_queue must be at least 1")
        self.transcriber = transcriber
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.stats = SchedulerStats()
        self._pending: deque[_Job] = deque()
        self._wake = threading.Condition()
        self._closed = False
        self._running: list[_Job] = []
        self._thread = threading.Thread(target=self._work, name="qwen-asr-edge-compute", daemon=True)
        self._thread.start()

    @property
    def queued(self) -> int:
        return len(self._pending)

    async def transcribe(
        self,
        audio,
        *,
        language: str | None,
        context: str,
        options: TranscriptionOptions,
        source: str,
        timeout: float | None = None,
    ) -> Transcript:
        """``transcriber.transcribe(audio, ...)`` on the compute thread, batched with the other
        recordings waiting with the same options.

        Args:
            audio: As ``Transcriber.transcribe_batch`` takes it (an array from ``prepare``, or a path).
            source: The name for messages and ``Transcript.source``.
            timeout: Seconds to wait, queue included.

        Raises:
            Busy: the queue is full.
            Expired: ``timeout`` passed first.
            AudioError, InputError, ...: as ``Transcriber.transcribe``.
        """
        job = self._job(None, timeout)
        job.audio, job.language, job.context, job.options, job.source = (
            audio,
            language,
            context,
            options,
            source,
        )
        return await self._submit(job)

    async def call(self, run: Callable[[], Any], timeout: float | None = None, force: bool = False) -> Any:
        """``run()`` on the compute thread, in queue order; its result or exception.

        Args:
            force: Queue it even when the queue is full (a live stream's next step, whose audio
                would otherwise be lost; streams are few, each has one step queued at a time).

        Raises:
            Busy: the queue is full (and not ``force``).
            Expired: ``timeout`` passed first (``run`` is skipped if it had not started).
        """
        return await self._submit(self._job(run, timeout), force)

    def close(self, wait: bool = True) -> None:
        """Take no more work: jobs still queued get ``Busy`` at once, and the thread stops when the
        job it runs ends (joined if ``wait``)."""
        with self._wake:
            self._closed = True
            pending, self._pending = list(self._pending), deque()
            self._wake.notify()
        for job in pending:
            self._settle(job, error=Busy(SHUTTING_DOWN))
        if wait:
            self._thread.join()

    def drop_running(self) -> None:
        """Answer the jobs being computed with ``Busy`` now (a shutdown that cannot wait for them);
        the thread finishes them, and their results are dropped."""
        for job in list(self._running):
            self._settle(job, error=Busy(SHUTTING_DOWN))

    @property
    def running(self) -> bool:
        """Whether the thread is inside a job (a shutdown then must not finalize under it)."""
        return bool(self._running)

    def _job(self, run, timeout: float | None) -> _Job:
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + timeout if timeout is not None else float("inf")
        return _Job(run, loop, loop.create_future(), deadline)

    async def _submit(self, job: _Job, force: bool = False):
        with self._wake:
            if self._closed:
                raise Busy(SHUTTING_DOWN)
            if len(self._pending) >= self.max_queue and not force:
                self.stats.busy_refusals += 1
                waiting = len(self._pending)
                are = "requests are" if waiting != 1 else "request is"
                raise Busy(f"the server is busy: {waiting} {are} waiting")
            self._pending.append(job)
            self._wake.notify()
        try:
            remaining = job.deadline - time.monotonic()
            if remaining == float("inf"):
                return await job.future
            return await asyncio.wait_for(asyncio.shield(job.future), max(remaining, 0.0))
        except TimeoutError:
            self._abandon(job)
            raise Expired(TOO_LONG) from None
        except asyncio.CancelledError:  # the caller went away: skip the job if it has not started
            self._abandon(job)
            raise

    @staticmethod
    def _abandon(job: _Job) -> None:
        job.abandoned = True  # skipped if it has not started
        job.future.cancel()  # so that its result, when it comes, is dropped unseen

    # -- the compute thread -------------------------------------------------------------------

    def _next(self) -> list[_Job] | None:
        """The next job, with the waiting recordings it can be decoded with; None when closed."""
        with self._wake:
            while not self._pending and not self._closed:
                self._wake.wait()
            if self._closed:
                return None
            first = self._pending.popleft()
            if not first.batchable:
                return [first]
            batch = [first]
            for job in list(self._pending):
                if len(batch) >= self.max_batch:
                    break
                if job.batchable and job.options == first.options:
                    self._pending.remove(job)
                    batch.append(job)
            return batch

    def _work(self) -> None:
        while (jobs := self._next()) is not None:
            now = time.monotonic()
            live = []
            for job in jobs:
                if job.abandoned or job.deadline < now:  # its caller is gone, or will be
                    self.stats.expired += 1
                    self._settle(job, error=Expired(TOO_LONG))
                else:
                    live.append(job)
            if not live:
                continue
            self._running = live
            try:
                if live[0].run is not None:
                    self.stats.calls += 1
                    self._attempt(live[0], live[0].run)
                else:
                    self._transcribe(live)
            finally:
                self._running = []

    def _transcribe(self, jobs: list[_Job]) -> None:
        asr = self.transcriber
        self.stats.batches += 1
        self.stats.batched += len(jobs)
        self.stats.largest_batch = max(self.stats.largest_batch, len(jobs))
        if len(jobs) == 1:
            job = jobs[0]
            self._attempt(job, lambda: self._one(job))
            return
        try:
            transcripts = asr.transcribe_batch(
                [j.audio for j in jobs],
                language=[j.language for j in jobs],
                context=[j.context for j in jobs],
                options=jobs[0].options,
                sources=[j.source for j in jobs],
            )
        except Exception:  # find whose it was: each on its own (as the CLI does for files)
            for job in jobs:
                self._attempt(job, lambda job=job: self._one(job))
        else:
            for job, transcript in zip(jobs, transcripts, strict=True):
                self._settle(job, result=transcript)

    def _one(self, job: _Job) -> Transcript:
        return self.transcriber.transcribe_batch(
            [job.audio],
            language=job.language,
            context=job.context,
            options=job.options,
            sources=[job.source],
        )[0]

    def _attempt(self, job: _Job, run: Callable[[], Any]) -> None:
        try:
            result = run()
        except BaseException as e:  # handed to the waiting request, never lost
            self._settle(job, error=e)
        else:
            self._settle(job, result=result)

    @staticmethod
    def _settle(job: _Job, result: Any = None, error: BaseException | None = None) -> None:
        def settle() -> None:
            if job.future.done():  # the caller stopped waiting
                return
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(result)

        with contextlib.suppress(RuntimeError):  # the event loop is closed: nobody is waiting
            job.loop.call_soon_threadsafe(settle)
