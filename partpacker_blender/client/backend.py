"""The backend worker seen from Blender: one job at a time, events drained by `poll()`.

`poll()` is a plain function for the main thread: the UI's timer calls it, background scripts and
tests call it in a loop. It finishes jobs, notices a dead or hung worker, and stops an idle one.
"""

from __future__ import annotations

import itertools
import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from ..child_python import backend_environment
from ..problems import Problem
from .process import END_OF_STREAM, WorkerProcess
from .protocol import (
    PROTOCOL_VERSION,
    Hello,
    JobError,
    Progress,
    ProtocolError,
    Request,
    Result,
    parse_event,
)

log = logging.getLogger(__name__)

BUSY_INTERVAL = 0.1
IDLE_INTERVAL = 1.0


class BackendUnavailable(Problem):
    """The worker cannot be started: no backend Python, no backend package."""


class BusyError(RuntimeError):
    """A job is already running: one job at a time."""


@dataclass(frozen=True)
class WorkerSettings:
    python: Path | None
    """None when no backend Python is configured: the backend is not set up."""
    backend_root: Path
    """The folder that contains the `backend` package: the worker's cwd and PYTHONPATH."""
    weights_dir: Path | None = None
    cache_dir: Path | None = None
    device: str = "auto"
    low_memory: bool = False
    weights_cache: Path | None = None
    """Folder for the backend's converted copy of the weights (None: no cache)."""
    env: dict[str, str] = field(default_factory=dict)
    hang_timeout: float = 600.0
    """Seconds without any event while a job runs before the worker counts as hung."""
    startup_timeout: float = 120.0
    stop_timeout: float = 3.0
    """Seconds a stopping worker gets after end of input, then again after SIGTERM."""
    idle_timeout: float | None = None
    """Seconds without a job before the worker is stopped (None: keep it loaded)."""

    def launch_key(self) -> tuple:
        """What a running worker was started with: a change needs a new worker."""
        return (self.command(), self.backend_root, sorted(self.env.items()))

    def command(self) -> list[str]:
        command = [str(self.python), "-u", "-m", "backend", "serve", "--device", self.device]
        if self.weights_dir is not None:
            command += ["--weights-dir", str(self.weights_dir)]
        elif self.cache_dir is not None:
            command += ["--repo-cache", str(self.cache_dir)]
        if self.low_memory:
            command.append("--low-memory")
        if self.weights_cache is not None:
            command += ["--weights-cache", str(self.weights_cache)]
        return command


def check_backend_files(settings: WorkerSettings) -> None:
    """Raise BackendUnavailable unless the backend Python and the backend package exist."""
    if settings.python is None:
        raise BackendUnavailable(
            "the backend is not set up", "set the backend's Python in the add-on preferences"
        )
    if not settings.python.is_file():
        raise BackendUnavailable(
            f"the backend Python {settings.python} does not exist",
            "set the backend's Python in the add-on preferences",
        )
    if not (settings.backend_root / "backend" / "__main__.py").is_file():
        raise BackendUnavailable(
            f"no backend package in {settings.backend_root}",
            "reinstall the extension: its backend folder is missing",
        )


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
    cancel_requested: bool = False
    sent: bool = False


@dataclass(frozen=True)
class JobOutcome:
    job: Job
    result: dict[str, Any] | None = None
    error: JobError | None = None

    @property
    def cancelled(self) -> bool:
        return self.error is not None and self.error.is_cancellation


class BackendClient:
    def __init__(
        self,
        settings: Callable[[], WorkerSettings],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings_source = settings
        self._clock = clock
        self._ids = itertools.count(1)
        self._process: WorkerProcess | None = None
        self._settings: WorkerSettings | None = None
        self._last_activity = 0.0
        self._started_at = 0.0
        self.hello: Hello | None = None
        self.job: Job | None = None

    @property
    def state(self) -> WorkerState:
        if self._process is None:
            return WorkerState.STOPPED
        if self.hello is None:
            return WorkerState.STARTING
        return WorkerState.BUSY if self.job is not None else WorkerState.READY

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def submit(
        self,
        request_type: str,
        fields: dict[str, Any],
        on_done: Callable[[JobOutcome], None] | None = None,
    ) -> Job:
        """Start a job (and the worker when needed). Raises BusyError, BackendUnavailable."""
        if self.job is not None:
            raise BusyError(f"the backend is busy with a {self.job.type} job")
        settings = self._settings_source()
        running = self._settings if self._process is not None else None
        if running is not None and settings.launch_key() != running.launch_key():
            log.info("backend settings changed: restarting the worker")
            self.stop()
        if self._process is None:
            self._start(settings)
        self._settings = settings
        now = self._clock()
        self.job = Job(f"j{next(self._ids)}", request_type, fields, on_done, now, now)
        if self.hello is not None:
            self._send_job()
        return self.job

    def cancel(self) -> bool:
        """Ask for the running job to end as cancelled; False when there is none."""
        job = self.job
        if job is None:
            return False
        job.cancel_requested = True
        if not job.sent:
            self._finish(JobOutcome(job, error=JobError("cancelled", "cancelled", id=job.id)))
        else:
            self._send(Request(f"c{next(self._ids)}", "cancel", {"job": job.id}))
        return True

    def poll(self) -> float | None:
        """Handle everything the worker said; the seconds until the next poll, None when idle."""
        if self._process is None:
            return None
        self._drain()
        if self._process is not None:
            self._check_health()
        if self._process is None:
            return None
        return IDLE_INTERVAL if self.state is WorkerState.READY else BUSY_INTERVAL

    def wait(self, job: Job, timeout: float | None = None) -> None:
        """Poll until `job` has ended (for background scripts, which have no timers)."""
        deadline = None if timeout is None else self._clock() + timeout
        while self.job is job:
            interval = self.poll()
            if deadline is not None and self._clock() > deadline:
                raise TimeoutError(f"job {job.id} did not end within {timeout} s")
            time.sleep(min(interval or BUSY_INTERVAL, BUSY_INTERVAL))

    def stop(self, reason: str = "the backend worker was stopped") -> None:
        """Stop the worker; a running job ends as cancelled."""
        process, self._process = self._process, None
        self.hello = None
        if process is not None:
            assert self._settings is not None
            process.stop(self._settings.stop_timeout, self._settings.stop_timeout)
        if self.job is not None:
            self._finish(JobOutcome(self.job, error=JobError("cancelled", reason, id=self.job.id)))

    def _start(self, settings: WorkerSettings) -> None:
        check_backend_files(settings)
        env = backend_environment(settings.backend_root, settings.env)
        try:
            self._process = WorkerProcess(settings.command(), settings.backend_root, env)
        except OSError as error:  # not executable, wrong architecture, ...
            raise BackendUnavailable(
                f"cannot start the backend Python {settings.python}: {error}",
                "choose another Python in the add-on preferences, or set up the backend again",
            ) from error
        self._settings = settings
        self._started_at = self._last_activity = self._clock()

    def _drain(self) -> None:
        assert self._process is not None
        lines = self._process.lines
        while self._process is not None:
            try:
                line = lines.get_nowait()
            except queue.Empty:
                return
            if line is END_OF_STREAM:
                return
            if line.strip():
                self._handle_line(line)

    def _handle_line(self, line: str) -> None:
        try:
            event = parse_event(line)
        except ProtocolError as error:
            log.warning("%s", error)
            return
        if isinstance(event, Hello):
            self._on_hello(event)
            return
        if isinstance(event, JobError) and event.id is None and self.hello is None:
            self._fail_and_stop(event.code, event.message, event.hint)  # settings that cannot work
            return
        job = self.job
        if job is None or event.id != job.id:
            log.debug("event for another request: %s", event)
            return
        job.last_event = self._last_activity = self._clock()
        if isinstance(event, Progress):
            job.progress = event
        elif isinstance(event, Result):
            self._finish(JobOutcome(job, result=event.fields))
        else:
            self._finish(JobOutcome(job, error=event))

    def _on_hello(self, hello: Hello) -> None:
        if hello.protocol != PROTOCOL_VERSION:
            self._fail_and_stop(
                "protocol",
                f"the backend speaks protocol {hello.protocol}; this add-on speaks "
                f"{PROTOCOL_VERSION}",
                "install the add-on and the backend from the same release",
            )
            return
        log.info("backend %s ready on %s", hello.backend_version, hello.device_name)
        self.hello = hello
        self._last_activity = self._clock()
        if self.job is not None:
            self.job.last_event = self._last_activity
            self._send_job()

    def _check_health(self) -> None:
        assert self._process is not None
        now = self._clock()
        settings = self._settings
        assert settings is not None
        code = self._process.exit_code
        if code is not None:
            self._process.finish_reading()  # its last lines may still be on their way
            self._drain()
            if self._process is None:
                return
            self._fail_and_stop(
                "worker_died",
                f"the backend stopped unexpectedly (exit code {code})",
                "check the backend in the add-on preferences; its last output is in the system "
                "console",
            )
        elif self.hello is None and now - self._started_at > settings.startup_timeout:
            self._fail_and_stop(
                "worker_start",
                f"the backend did not start within {settings.startup_timeout:.0f} s",
                "check the backend in the add-on preferences",
            )
        elif self.job is not None and now - self.job.last_event > settings.hang_timeout:
            self._fail_and_stop(
                "worker_hung",
                f"the backend sent nothing for {settings.hang_timeout:.0f} s and was stopped",
                "try again; if it keeps happening lower the grid resolution",
            )
        elif (
            self.job is None
            and settings.idle_timeout is not None
            and now - self._last_activity > settings.idle_timeout
        ):
            log.info("backend idle for %.0f s: stopping it", settings.idle_timeout)
            self.stop()

    def _fail_and_stop(self, code: str, message: str, hint: str) -> None:
        assert self._process is not None
        details = self._process.stderr_text()
        log.error("%s\n%s", message, details)
        process, self._process = self._process, None
        self.hello = None
        if process.exit_code is None:
            process.kill()
        else:
            process.stop()
        if self.job is not None:
            error = JobError(code, message, hint, traceback=details, id=self.job.id)
            self._finish(JobOutcome(self.job, error=error))

    def _send_job(self) -> None:
        job = self.job
        assert job is not None
        job.sent = True
        self._send(Request(job.id, job.type, job.fields))

    def _send(self, request: Request) -> None:
        assert self._process is not None
        if not self._process.send(request.encode()):
            log.warning("the backend worker no longer reads requests")

    def _finish(self, outcome: JobOutcome) -> None:
        self.job = None
        self._last_activity = self._clock()
        if outcome.job.on_done is not None:
            outcome.job.on_done(outcome)
