"""A time bound on one call, so that a candidate that loops forever is a
divergence of that candidate and never a hang of the run.

Uses SIGALRM on the main thread (pytest runs tests there); elsewhere, or on a
platform without SIGALRM, the call runs unbounded.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


class ExampleTimeout(BaseException):
    """Raised inside a call that ran past its time bound.

    A ``BaseException`` so that a candidate's ``except Exception`` cannot
    swallow it.
    """


@contextlib.contextmanager
def time_bound(seconds: float, what: str) -> Iterator[None]:
    usable = (
        seconds
        and seconds > 0
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def _expired(signum, frame):
        raise ExampleTimeout(f"{what} did not return within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
