"""The backend the preferences choose, job by job: this computer's worker or a remote one.
A `Backend` (backend.py) in front of both. Plain Python: no bpy.

A running job stays with the backend that took it; the choice applies to the next job. Both are
polled, so that an idle local worker still stops after its keep-loaded time, and freeing memory
goes to a worker still running.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .backend import Backend, Job, JobOutcome, WorkerState


class BackendSwitch:
    def __init__(self, local: Backend, remote: Backend, use_remote: Callable[[], bool]) -> None:
        self.local, self.remote = local, remote
        self._use_remote = use_remote
        self._running: Backend | None = None

    @property
    def current(self) -> Backend:
        """The backend of the running job, else the one the next job goes to."""
        if self._running is not None and self._running.state is WorkerState.BUSY:
            return self._running
        return self.remote if self._use_remote() else self.local

    @property
    def state(self) -> WorkerState:
        return self.current.state

    @property
    def device_name(self) -> str:
        return self.current.device_name

    @property
    def device(self) -> str:
        """A local worker left running holds models on its device, whatever the choice now."""
        if self.local.state is not WorkerState.STOPPED:
            return self.local.device
        return self.current.device

    def recent_output(self) -> str:
        return (self._running or self.current).recent_output()

    def submit(
        self,
        request_type: str,
        fields: dict[str, Any],
        on_done: Callable[[JobOutcome], None] | None = None,
    ) -> Job:
        backend = self.current
        if request_type == "unload" and self.local.state is not WorkerState.STOPPED:
            backend = self.local  # a worker left running holds models, whatever the choice now
        job = backend.submit(request_type, fields, on_done)
        self._running = backend
        return job

    def cancel(self) -> bool:
        return self.current.cancel()

    def poll(self) -> float | None:
        intervals = [i for i in (self.local.poll(), self.remote.poll()) if i is not None]
        return min(intervals) if intervals else None

    def wait(self, job: Job, timeout: float | None = None) -> None:
        (self._running or self.current).wait(job, timeout)

    def stop(self, reason: str) -> None:
        self.local.stop(reason)
        self.remote.stop(reason)
