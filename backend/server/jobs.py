"""A job's life inside the web app: its cancel flag (set when its client cancels or leaves), the
blocking runner call in a thread, and our stages shown as Gradio progress."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from ..pipeline import Progress, ProgressCallback

T = TypeVar("T")

STAGES = {
    "prepare": ("Removing the background", "steps"),
    "load": ("Loading the models", "files"),
    "condition": ("Reading the image", "steps"),
    "sample": ("Sampling", "steps"),
    "decode": ("Decoding the volumes", "steps"),
    "extract": ("Extracting the surfaces", "volumes"),
    "postprocess": ("Splitting into parts", "volumes"),
    "export": ("Writing the GLB", "files"),
}
"""What a person reads for each pipeline stage, and the unit of its steps."""


class CancelFlags:
    """The cancel flag of every running job, by the Gradio session (page or client) it serves."""

    def __init__(self) -> None:
        self._flags: defaultdict[str | None, set[threading.Event]] = defaultdict(set)
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def flag(self, session: str | None) -> Iterator[threading.Event]:
        flag = threading.Event()
        with self._lock:
            self._flags[session].add(flag)
        try:
            yield flag
        finally:
            with self._lock:
                self._flags[session].discard(flag)
                if not self._flags[session]:
                    del self._flags[session]

    def cancel_session(self, session: str | None) -> int:
        """Cancel the jobs of a session that ended; how many there were."""
        with self._lock:
            flags = list(self._flags.get(session, ()))
        for flag in flags:
            flag.set()
        return len(flags)

    def cancel_all(self) -> None:
        with self._lock:
            flags = [flag for session in self._flags.values() for flag in session]
        for flag in flags:
            flag.set()


async def run_cancellable(work: Callable[[], T], cancel: threading.Event) -> T:
    """`work()` in a thread. When Gradio cancels this task (the client cancelled), the flag is
    set and the task waits for the thread to stop at its next check before it ends, so the next
    job never shares the device with one still stopping."""
    task = asyncio.ensure_future(asyncio.to_thread(work))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        cancel.set()
        await asyncio.wait([task])
        with contextlib.suppress(Exception):
            task.result()  # the runner's Cancelled: expected, and nobody waits for it
        raise


def gradio_progress(progress: Callable[..., Any]) -> ProgressCallback:
    """Our `Progress(stage, step, total)` as calls of a `gr.Progress`."""

    def report(update: Progress) -> None:
        label, unit = STAGES.get(update.stage, (update.stage, "steps"))
        progress((update.step, update.total), desc=label, unit=unit)

    return report
