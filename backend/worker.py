"""The persistent worker's bookkeeping (backend/PROTOCOL.md; the process is serve.py).

A reader thread parses the request lines on stdin: `cancel`, `status` and `shutdown` are answered
there at once; `prepare`, `generate` and `unload` join a queue that the main thread runs one at a
time, with the models kept loaded between jobs.

Once input ends (or `shutdown` comes), a job that does not stop within STOP_GRACE seconds is
abandoned: the process exits anyway, so that no orphan holds the device's memory.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import BadInputError, Cancelled, PartPackerError
from .params import GenerationParams
from .protocol import (
    EventChannel,
    OversizedLine,
    ProgressEvents,
    ProtocolError,
    Request,
    check_fields,
    error_line,
    event_line,
    generation_params,
    oversized,
    parse_request,
    reused_id,
    unexpected_error_line,
)

if TYPE_CHECKING:
    from .pipeline import PartPackerPipeline

log = logging.getLogger(__name__)

ENDED_IDS_KEPT = 1024
"""How many ended requests `cancel` still recognises (it answers `cancelled: false` for them)."""
STOP_GRACE = 5.0
"""Seconds a running job has to stop once input ended or `shutdown` came; then the process exits."""


@dataclass
class Job:
    request: Request
    params: GenerationParams | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    started: bool = False

    @property
    def id(self) -> str:
        return self.request.id


@dataclass(frozen=True)
class Stop:
    """The queue's last item: the `shutdown` request's id, None at the end of input."""

    request_id: str | None


class Worker:
    """The request bookkeeping: the reader thread calls `read`, the main thread `run`."""

    def __init__(self, pipeline: PartPackerPipeline, channel: EventChannel) -> None:
        self.pipeline = pipeline
        self.channel = channel
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[Job | Stop] = queue.SimpleQueue()
        self._jobs: dict[str, Job] = {}  # queued or running
        self._ended: collections.deque[str] = collections.deque(maxlen=ENDED_IDS_KEPT)
        self._running: Job | None = None
        self._stopped = False
        self._watchdog: threading.Timer | None = None

    # The reader thread.

    def read(self, lines: Iterable[str | OversizedLine]) -> None:
        """Answer request lines until `shutdown` or the end of input."""
        for line in lines:
            if isinstance(line, OversizedLine):
                self.channel.write(error_line(None, oversized(line)))
            elif line.strip() and not self.handle_line(line):
                return
        log.info("end of input: shutting down")
        self.stop(None)

    def handle_line(self, line: str) -> bool:
        """False once the line was `shutdown`."""
        try:
            request = parse_request(line)
        except ProtocolError as error:
            self.channel.write(error_line(None, error))
            return True
        if self._is_live(request.id):  # its own final event is still to come: answer to no id
            self.channel.write(error_line(None, reused_id(request.id)))
            return True
        try:
            return self.handle(request)
        except PartPackerError as error:
            self.channel.write(error_line(request.id, error))
        except Exception as error:  # a bug in one request must not end the reader
            log.exception("internal error on request %s", request.id)
            self.channel.write(unexpected_error_line(request.id, error))
        return True

    def handle(self, request: Request) -> bool:
        check_fields(request)
        if request.type == "shutdown":
            self.stop(request.id)
            return False
        if request.type == "cancel":
            self.cancel(request.id, request.fields["job"])
        elif request.type == "status":
            self.channel.write(event_line("result", request.id, **self.status()))
        else:
            self.enqueue(request)
        return True

    def enqueue(self, request: Request) -> None:
        job = Job(request, generation_params(request) if request.type == "generate" else None)
        with self._lock:
            self._jobs[request.id] = job
        self._queue.put(job)

    def _is_live(self, request_id: str) -> bool:
        with self._lock:
            return request_id in self._jobs

    def cancel(self, request_id: str, target: str) -> None:
        with self._lock:
            job = self._jobs.get(target)
            if job is None and target not in self._ended:
                raise BadInputError(
                    f"there is no request {target!r} to cancel",
                    "cancel takes the id of a queued or running prepare, generate or unload",
                )
            self.channel.write(event_line("result", request_id, cancelled=job is not None))
            if job is not None:
                self._cancel_locked(job, "cancelled before it started")

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "busy_job": self._running.id if self._running else None,
                "queued": sum(not job.started for job in self._jobs.values()),
                "models_loaded": self.pipeline.loaded,
            }

    def stop(self, request_id: str | None) -> None:
        """Cancel every job; the main thread answers `shutdown` once the running one ended, or
        the watchdog ends the process STOP_GRACE seconds later."""
        with self._lock:
            for job in list(self._jobs.values()):
                self._cancel_locked(job, "cancelled: the worker is shutting down")
        self._queue.put(Stop(request_id))
        self._watchdog = threading.Timer(STOP_GRACE, self._abandon, args=(request_id,))
        self._watchdog.daemon = True
        self._watchdog.start()

    def _abandon(self, request_id: str | None) -> None:
        """The running job did not stop in time: end it and the shutdown, then the process."""
        with self._lock:  # held until the exit: the main thread writes no further event
            if self._stopped:
                return
            job = self._running
            if job is not None:
                log.warning(
                    "%s %s did not stop within %g s: exiting", job.request.type, job.id, STOP_GRACE
                )
                abandoned = Cancelled(f"abandoned: it did not stop within {STOP_GRACE:g} s")
                self.channel.write(error_line(job.id, abandoned))
            if request_id is not None:
                self.channel.write(event_line("result", request_id))
            logging.shutdown()
            os._exit(0)

    def _cancel_locked(self, job: Job, reason: str) -> None:
        job.cancel.set()
        if not job.started:
            self._end_locked(job, error_line(job.id, Cancelled(reason)))

    def _end_locked(self, job: Job, line: str) -> None:
        self.channel.write(line)
        del self._jobs[job.id]
        self._ended.append(job.id)

    # The main thread.

    def run(self) -> int:
        """Run the queued jobs, one at a time, until the queue's Stop; the exit code."""
        while True:
            item = self._queue.get()
            if isinstance(item, Stop):
                self._end(item)
                return 0
            if self._begin(item):
                self._finish(item, self._outcome(item))

    def _end(self, stop: Stop) -> None:
        with self._lock:
            self._stopped = True
            if self._watchdog is not None:
                self._watchdog.cancel()
            if stop.request_id is not None:
                self.channel.write(event_line("result", stop.request_id))
        log.info("shut down")

    def _begin(self, job: Job) -> bool:
        with self._lock:
            if self._jobs.get(job.id) is not job:  # cancelled while it waited
                return False
            job.started = True
            self._running = job
        log.info("%s %s started", job.request.type, job.id)
        return True

    def _outcome(self, job: Job) -> str:
        """The job's result or error line."""
        try:
            return event_line("result", job.id, **self._execute(job))
        except PartPackerError as error:
            log.info("%s %s ended: %s: %s", job.request.type, job.id, error.code, error.message)
            return error_line(job.id, error)
        except Exception as error:  # a bug in one job must not end the worker
            log.exception("internal error in %s %s", job.request.type, job.id)
            return unexpected_error_line(job.id, error)

    def _finish(self, job: Job, line: str) -> None:
        with self._lock:
            self._running = None
            self._end_locked(job, line)

    def _execute(self, job: Job) -> dict[str, Any]:
        fields = job.request.fields
        if job.request.type == "prepare":
            prepared = self.pipeline.prepare(Path(fields["image"]), Path(fields["output"]))
            height, width = prepared.rgba.shape[:2]
            return {
                "preview": fields["output"],
                "had_alpha": prepared.had_alpha,
                "width": width,
                "height": height,
            }
        if job.request.type == "generate":
            return self._generate(job)
        return {"freed_bytes": self.pipeline.unload()}

    def _generate(self, job: Job) -> dict[str, Any]:
        result = self.pipeline.generate(
            Path(job.request.fields["image"]),
            Path(job.request.fields["output_dir"]),
            job.params,
            on_progress=ProgressEvents(self.channel, job.id),
            should_cancel=job.cancel.is_set,
        )
        return result.to_dict()
