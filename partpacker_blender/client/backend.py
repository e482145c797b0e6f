"""A backend as the session sees it: jobs in, progress and one outcome out, one job at a time.

`Backend` is all of a backend that the session, the panel and the operators use; the local
worker (worker.py) is one. Everything happens on the main thread: events are handled by `poll()`,
and a job's `on_done` is called from `poll()`, `cancel()` or `stop()`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from ..problems import Problem
from .protocol import JobError, Progress


class BackendUnavailable(Problem):
    """The backend cannot be started: not set up, or its files are missing."""


class BusyError(RuntimeError):
    """A job is already running: one job at a time."""


class WorkerState(Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    READY = "ready"
    BUSY = "busy"


@dataclass
class Job:
    id: str
    type: str
    fields: dict[str, Any]
    on_done: Callable[[JobOutcome], None] | None
    started: float
    last_event: float
    progress: Progress | None = None
    cancel_requested_at: float | None = None
    sent: bool = False

    @property
    def cancel_requested(self) -> bool:
        return self.cancel_requested_at is not None


@dataclass(frozen=True)
class JobOutcome:
    job: Job
    result: dict[str, Any] | None = None
    error: JobError | None = None

    @property
    def cancelled(self) -> bool:
        return self.error is not None and self.error.is_cancellation


class Backend(Protocol):
    """What the add-on needs of a backend. Every submitted job ends with exactly one outcome,
    a result or an error (a cancelled job: the error "cancelled")."""

    @property
    def state(self) -> WorkerState: ...

    @property
    def device_name(self) -> str:
        """What the models run on, once the backend has said ("" before)."""
        ...

    @property
    def device(self) -> str:
        """The kind of device: "cuda", "mps", "cpu" once the backend has said ("" before)."""
        ...

    def recent_output(self) -> str:
        """The backend's last lines of log output, for a person reading up on an error."""
        ...

    def submit(
        self,
        request_type: str,
        fields: dict[str, Any],
        on_done: Callable[[JobOutcome], None] | None = None,
    ) -> Job:
        """Start a job. Raises BusyError, BackendUnavailable."""
        ...

    def cancel(self) -> bool:
        """Ask the running job to end as cancelled; False when there is none."""
        ...

    def poll(self) -> float | None:
        """Handle what the backend said; the seconds until the next poll, None when idle."""
        ...

    def wait(self, job: Job, timeout: float | None = None) -> None:
        """Poll until `job` has ended (background mode: no timers)."""
        ...

    def stop(self, reason: str) -> None:
        """Let go of the backend; a running job ends as cancelled with `reason`."""
        ...
