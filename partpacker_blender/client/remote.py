"""A remote backend: a PartPacker server or a Hugging Face Space, spoken to over Gradio's HTTP API
(gradio_http.py). A `Backend` (backend.py).

Each job runs in a thread (remote_job.py); `poll()` drains what the threads said, on the main
thread, as the worker client drains the worker's lines. Cancel ends the job at once (the user
stops waiting) and tells the server in the background.
"""

from __future__ import annotations

import itertools
import queue
import time
from collections.abc import Callable
from typing import Any

from ..polling import wait_until
from .backend import BackendUnavailable, BusyError, Job, JobOutcome, WorkerState
from .protocol import JobError, Progress, Result
from .remote_job import RemoteRun
from .remote_settings import RemoteSettings

BUSY_INTERVAL = 0.1


class RemoteClient:
    def __init__(
        self,
        settings: Callable[[], RemoteSettings],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings_source = settings
        self._clock = clock
        self._ids = itertools.count(1)
        self._events: queue.Queue = queue.Queue()
        self._run: RemoteRun | None = None
        self._label = ""
        self.job: Job | None = None

    @property
    def state(self) -> WorkerState:
        return WorkerState.READY if self.job is None else WorkerState.BUSY

    @property
    def device_name(self) -> str:
        """The server or Space of the running job, else the chosen one ("" if none works)."""
        if self.job is None:
            try:
                self._label = self._settings_source().label
            except BackendUnavailable:
                return ""
        return self._label

    @property
    def device(self) -> str:
        """Not known here: the server's models are the server's to keep or free."""
        return ""

    def recent_output(self) -> str:
        return ""  # the server keeps its own log

    def submit(
        self,
        request_type: str,
        fields: dict[str, Any],
        on_done: Callable[[JobOutcome], None] | None = None,
    ) -> Job:
        """Start a job. Raises BusyError, BackendUnavailable (settings that cannot work)."""
        if self.job is not None:
            raise BusyError(f"the backend is busy with a {self.job.type} job")
        settings = self._settings_source()
        self._label = settings.label
        now = self._clock()
        job = Job(f"r{next(self._ids)}", request_type, fields, on_done, now, now, sent=True)
        self.job = job
        if request_type == "unload":  # the server keeps its own models: nothing to do here
            self._events.put(Result(job.id, {}))
            return job
        self._run = RemoteRun(job.id, request_type, fields, settings, self._events)
        self._run.start()
        return job

    def cancel(self) -> bool:
        job = self.job
        if job is None:
            return False
        job.cancel_requested_at = self._clock()
        self._end_run(job, "cancelled")
        return True

    def poll(self) -> float | None:
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            self._handle(event)
        return None if self.job is None else BUSY_INTERVAL

    def wait(self, job: Job, timeout: float | None = None) -> None:
        wait_until(lambda: self.job is not job, self.poll, timeout=timeout, what=f"job {job.id}")

    def stop(self, reason: str = "the remote backend was let go") -> None:
        if self.job is not None:
            self._end_run(self.job, reason)

    def _handle(self, event: Progress | Result | JobError) -> None:
        job = self.job
        if job is None or event.id != job.id:
            return  # a cancelled job's last words
        job.last_event = self._clock()
        if isinstance(event, Progress):
            job.progress = event
        elif isinstance(event, Result):
            self._finish(JobOutcome(job, result=event.fields))
        else:
            self._finish(JobOutcome(job, error=event))

    def _end_run(self, job: Job, reason: str) -> None:
        run, self._run = self._run, None
        if run is not None:
            run.request_cancel()
        self._finish(JobOutcome(job, error=JobError("cancelled", reason, id=job.id)))

    def _finish(self, outcome: JobOutcome) -> None:
        self.job = None
        if outcome.job.on_done is not None:
            outcome.job.on_done(outcome)
