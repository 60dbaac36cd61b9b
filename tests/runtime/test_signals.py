"""``deferred_signals``: Ctrl-C and SIGTERM held while a bundle is swapped or a stream's step runs
(the callers' own tests: test_bundle.py, test_live.py)."""

from __future__ import annotations

import signal
import threading

import pytest

from qwen_asr_edge.runtime.signals import deferred_signals


@pytest.fixture
def handlers():
    """SIGINT and SIGTERM as they were before the test, put back after it."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


def test_the_first_signal_reaches_the_previous_handler_once_the_block_ends(handlers):
    seen = []
    signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(("handler", signum)))
    with deferred_signals():
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGTERM)
        seen.append("block ends")
    assert seen == ["block ends", ("handler", signal.SIGTERM)]


def test_ctrl_c_becomes_keyboard_interrupt_after_the_block(handlers):
    signal.signal(signal.SIGINT, signal.default_int_handler)
    finished = False
    with pytest.raises(KeyboardInterrupt), deferred_signals():
        signal.raise_signal(signal.SIGINT)
        finished = True
    assert finished
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_signal_stays_ignored_and_sigterm_is_still_held(handlers):
    """SIGINT ignored (a script's background job, `cmd &`): Ctrl-C does nothing, but SIGTERM
    must still wait for the block (it used to cut a stream's step in two there)."""
    seen = []
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    with deferred_signals():
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGTERM)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert seen == []
    assert seen == [signal.SIGTERM]


def test_off_the_main_thread_nothing_is_held(handlers):
    """`signal.signal` works in the main thread only: elsewhere the block runs as it is."""
    seen = []

    def work():
        with deferred_signals():
            seen.append(signal.getsignal(signal.SIGINT))

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert seen == [signal.getsignal(signal.SIGINT)]
