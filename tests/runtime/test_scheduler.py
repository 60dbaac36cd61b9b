"""The server's compute queue (scheduler.py): uploads that wait together are decoded in one batch
with each its own result, one bad upload fails alone, a full queue refuses at once, and a job
whose caller stopped waiting never runs."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest

from qwen_asr_edge.runtime import AudioError, Transcriber, TranscriptionOptions, demo_bundle, demo_examples
from qwen_asr_edge.runtime.scheduler import Busy, Expired, Scheduler

EXAMPLES = sorted(Path(e["audio"]) for e in demo_examples())


@pytest.fixture(scope="module")
def asr() -> Transcriber:
    return Transcriber(demo_bundle())


def _blocked(scheduler: Scheduler) -> tuple[threading.Event, threading.Event]:
    """Occupy the compute thread until the returned ``release`` is set."""
    started, release = threading.Event(), threading.Event()

    def hold():
        started.set()
        release.wait(30)

    return started, release, hold


def test_waiting_uploads_share_one_batch_and_keep_their_own_results(asr):
    async def run():
        scheduler = Scheduler(asr, max_batch=8)
        started, release, hold = _blocked(scheduler)
        holding = asyncio.ensure_future(scheduler.call(hold))
        await asyncio.to_thread(started.wait, 30)
        options = TranscriptionOptions()
        jobs = [
            scheduler.transcribe(asr.prepare(p), language=lang, context="", options=options, source=p.name)
            for p in EXAMPLES
            for lang in (None, "German")
        ]
        waiting = asyncio.gather(*jobs)
        await asyncio.sleep(0.1)
        assert scheduler.queued == len(jobs)
        release.set()
        await holding
        results = await waiting
        scheduler.close()
        return scheduler.stats, results

    stats, results = asyncio.run(run())
    assert stats.batches == 1 and stats.batched == 4 and stats.largest_batch == 4
    expected = [asr.transcribe(p, language=lang) for p in EXAMPLES for lang in (None, "German")]
    assert [r.text for r in results] == [e.text for e in expected]
    assert [r.source for r in results] == [p.name for p in EXAMPLES for _ in range(2)]


def test_one_bad_upload_fails_alone(asr):
    async def run():
        scheduler = Scheduler(asr)
        started, release, hold = _blocked(scheduler)
        holding = asyncio.ensure_future(scheduler.call(hold))
        await asyncio.to_thread(started.wait, 30)
        options = TranscriptionOptions()
        good = scheduler.transcribe(
            asr.prepare(EXAMPLES[0]), language=None, context="", options=options, source="a"
        )
        bad = scheduler.transcribe(
            np.full(16000, np.nan, dtype=np.float32),
            language=None,
            context="",
            options=options,
            source="b.wav",
        )
        waiting = asyncio.gather(good, bad, return_exceptions=True)
        await asyncio.sleep(0.1)
        release.set()
        await holding
        out = await waiting
        scheduler.close()
        return out

    good, bad = asyncio.run(run())
    assert good.text == asr.transcribe(EXAMPLES[0]).text
    assert isinstance(bad, AudioError) and str(bad).startswith("b.wav: ")


def test_a_full_queue_refuses_and_a_late_job_never_runs(asr):
    ran = []

    async def run():
        scheduler = Scheduler(asr, max_queue=1)
        started, release, hold = _blocked(scheduler)
        holding = asyncio.ensure_future(scheduler.call(hold))
        await asyncio.to_thread(started.wait, 30)
        late = asyncio.ensure_future(scheduler.call(lambda: ran.append("late"), timeout=0.05))
        await asyncio.sleep(0)
        with pytest.raises(Busy, match="^the server is busy: 1 request is waiting$"):
            await scheduler.call(lambda: ran.append("refused"))
        forced = asyncio.ensure_future(scheduler.call(lambda: ran.append("forced"), force=True))
        with pytest.raises(Expired):
            await late
        release.set()
        await holding
        await forced
        scheduler.close()
        return scheduler.stats

    stats = asyncio.run(run())
    assert ran == ["forced"]
    assert stats.expired == 1 and stats.busy_refusals == 1
