"""Waiting for work that is advanced by polling: the add-on's one waiting loop. Plain Python.

Everything that runs in another process (a job, a setup step) moves on when its `poll()` is
called on the main thread: in the UI by a timer (timers.py), in background mode, which has no
timers, by `wait_until()`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

FALLBACK_INTERVAL = 0.1
"""Seconds between polls when `poll()` names none."""


def wait_until(
    finished: Callable[[], bool],
    poll: Callable[[], float | None],
    *,
    timeout: float | None = None,
    what: str = "the work",
    on_timeout: Callable[[], object] | None = None,
) -> None:
    """Call `poll` (it returns the seconds until it wants to be called again) until
    `finished()`. After `timeout` seconds call `on_timeout` and raise TimeoutError."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not finished():
        interval = poll()
        if finished():
            return
        if deadline is not None and time.monotonic() > deadline:
            if on_timeout is not None:
                on_timeout()
            raise TimeoutError(f"{what} did not finish within {timeout} s")
        time.sleep(FALLBACK_INTERVAL if interval is None else interval)
