"""The local backend: a worker process (`python -m backend serve`) speaking the worker protocol
over its stdin and stdout. A `Backend` (backend.py).

`poll()` finishes jobs, notices a dead or hung worker, and stops an idle one.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

from ..child_process import MAX_LINE_CHARS, ChildProcess, CutLine, backend_environment
from ..polling import wait_until
from .backend import BackendUnavailable, BusyError, Job, JobOutcome, WorkerState
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
from .worker_settings import WorkerSettings, check_backend_files

log = logging.getLogger(__name__)

BUSY_INTERVAL = 0.1
IDLE_INTERVAL = 1.0


class WorkerClient:
    def __init__(
        self,
        settings: Callable[[], WorkerSettings],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings_source = settings
        self._clock = clock
        self._ids = itertools.count(1)
        self._process: ChildProcess | None = None
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
    def device_name(self) -> str:
        return "" if self.hello is None else self.hello.device_name or self.hello.device

    @property
    def device(self) -> str:
        return "" if self.hello is None else self.hello.device

    def recent_output(self) -> str:
        return "" if self._process is None else self._process.stderr_text(lines=200)

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
        if job.cancel_requested_at is None:
            job.cancel_requested_at = self._clock()
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
        wait_until(lambda: self.job is not job, self.poll, timeout=timeout, what=f"job {job.id}")

    def stop(self, reason: str = "the backend worker was stopped") -> None:
        """Stop the worker without waiting for it to exit; a running job ends as cancelled."""
        process, self._process = self._process, None
        self.hello = None
        if process is not None:
            assert self._settings is not None
            process.stop_in_background(self._settings.stop_timeout, self._settings.stop_timeout)
        if self.job is not None:
            self._finish(JobOutcome(self.job, error=JobError("cancelled", reason, id=self.job.id)))

    def _start(self, settings: WorkerSettings) -> None:
        check_backend_files(settings)
        command = settings.command()
        env = backend_environment(settings.backend_root, settings.env)
        log.info(
            "starting the backend worker: %s (in %s)", " ".join(command), settings.backend_root
        )
        try:
            self._process = ChildProcess(
                command, cwd=settings.backend_root, env=env, name="worker", send_input=True
            )
        except OSError as error:  # not executable, wrong architecture, ...
            raise BackendUnavailable(
                f"cannot start the backend Python {settings.python}: {error}",
                "choose another Python in the add-on preferences, or set up the backend again",
            ) from error
        self._settings = settings
        self._started_at = self._last_activity = self._clock()

    def _drain(self) -> None:
        process = self._process
        assert process is not None
        for from_stdout, line in process.new_lines():
            if from_stdout and isinstance(line, CutLine):
                self._fail_and_stop(
                    "protocol",
                    f"the backend wrote a line of {line.length / 1e6:.0f} MB, more than the "
                    f"{MAX_LINE_CHARS / 1e6:.0f} MB a line may have, and was stopped",
                    "try again; if it happens again, report it as a bug of the backend",
                )
            elif from_stdout and line.strip():
                self._handle_line(line)
            if self._process is not process:
                return

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
        elif self._cancel_overdue(now, settings):
            self._fail_and_stop(
                "cancelled",
                f"the backend did not stop the job within {settings.cancel_grace:.0f} s of the "
                "cancel, so it was stopped",
                "",
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

    def _cancel_overdue(self, now: float, settings: WorkerSettings) -> bool:
        cancelled_at = None if self.job is None else self.job.cancel_requested_at
        return cancelled_at is not None and now - cancelled_at > settings.cancel_grace

    def _fail_and_stop(self, code: str, message: str, hint: str) -> None:
        """End the worker at once; the running job ends with this error, or as cancelled when
        it was cancelled (the user asked for its end, whatever else went wrong)."""
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
            if self.job.cancel_requested:
                code, hint = "cancelled", ""
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
