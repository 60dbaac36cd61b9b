"""Ctrl-C (SIGINT) and SIGTERM held back while a piece of work must not be cut in two: a bundle
being swapped for another (``bundle.publish``), a live stream's step (``live.run_stream``)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the block, then deliver the first that came to the handler that
    was in place before (Python's own raises KeyboardInterrupt as the block ends).

    Only signals with a Python handler are held: one ignored (``SIG_IGN``, as SIGINT in a script's
    background job) stays ignored, one set outside Python is left alone. Python runs signal
    handlers in the main thread only, so elsewhere nothing is held. Installing a handler costs a
    few microseconds, so a block per decoding step is cheap.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {}
    for s in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(s) not in (None, signal.SIG_IGN):
            previous[s] = signal.signal(s, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if pending:
            signal.raise_signal(pending[0])
