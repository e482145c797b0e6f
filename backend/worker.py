"""`python -m backend serve`: the persistent worker of backend/PROTOCOL.md.

A reader thread parses the request lines on stdin: `cancel`, `status` and `shutdown` are answered
there at once; `prepare`, `generate` and `unload` join a queue that the main thread runs one at a
time, with the models kept loaded between jobs. Only protocol events reach the real stdout: file
descriptor 1 is pointed at stderr at start, so whatever a library prints lands in the log.
"""

from __future__ import annotations

import collections
import io
import json
import logging
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from . import __version__
from .errors import BadInputError, Cancelled, PartPackerError, describe_bug
from .params import GenerationParams

if TYPE_CHECKING:
    from .pipeline import PartPackerPipeline, PipelineSettings, Progress

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
PROGRESS_INTERVAL = 0.1
"""Seconds between two progress events of one stage; a stage's first and last steps always go."""
JOB_FIELDS = {"prepare": ("image", "output"), "generate": ("image", "output_dir"), "unload": ()}
CONTROL_FIELDS = {"cancel": ("job",), "status": (), "shutdown": ()}
REQUEST_FIELDS = {**JOB_FIELDS, **CONTROL_FIELDS}
PROTOCOL_HINT = "see backend/PROTOCOL.md: one JSON object per line with an id and a type"
ENDED_IDS_KEPT = 1024
"""How many ended requests `cancel` still recognises (it answers `cancelled: false` for them)."""


class ProtocolError(PartPackerError):
    """A line that is not a request of this protocol."""

    code = "protocol"
    exit_code = 2


@dataclass(frozen=True)
class Request:
    id: str
    type: str
    fields: dict[str, Any]


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


def parse_request(line: str) -> Request:
    """A line's request; its `type` and fields are checked by `check_fields`. ProtocolError
    here means the line has no id to answer to."""
    try:
        message = json.loads(line)
    except ValueError as error:
        raise ProtocolError(f"the line is not JSON ({error})", PROTOCOL_HINT) from None
    if not isinstance(message, dict):
        raise ProtocolError(
            f"a request must be a JSON object, not {type(message).__name__}", PROTOCOL_HINT
        )
    request_id = message.get("id")
    if not isinstance(request_id, str) or not request_id:
        raise ProtocolError('the request has no "id" (a non-empty string)', PROTOCOL_HINT)
    request_type = message.get("type")
    return Request(request_id, request_type if isinstance(request_type, str) else "", message)


def check_fields(request: Request) -> None:
    if request.type not in REQUEST_FIELDS:
        raise ProtocolError(
            f"unknown request type {request.fields.get('type')!r}",
            f"the types are {', '.join(REQUEST_FIELDS)}",
        )
    for name in REQUEST_FIELDS[request.type]:
        value = request.fields.get(name)
        if not isinstance(value, str) or not value:
            raise ProtocolError(
                f'a {request.type} request needs "{name}" (a non-empty string), got {value!r}',
                PROTOCOL_HINT,
            )


def generation_params(request: Request) -> GenerationParams:
    values = request.fields.get("params", {})
    if not isinstance(values, dict):
        raise ProtocolError(f'"params" must be a JSON object, got {values!r}', PROTOCOL_HINT)
    return GenerationParams.from_dict(values)


def event_line(event: str, request_id: str | None, **fields: Any) -> str:
    return json.dumps({"event": event, "id": request_id, **fields}) + "\n"


def error_line(request_id: str | None, error: PartPackerError, trace: str = "") -> str:
    return event_line(
        "error",
        request_id,
        code=error.code,
        message=error.message,
        hint=error.hint,
        traceback=trace,
    )


def reused_id(request_id: str) -> ProtocolError:
    return ProtocolError(
        f"the id {request_id!r} belongs to a request that has not ended; this request is ignored",
        "give every request its own id",
    )


def internal_error(error: Exception) -> PartPackerError:
    return describe_bug(error, "this is a bug; the traceback says where, please report it")


class EventChannel:
    """Writes event lines to the protocol stream, whole lines only, from any thread."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._broken = False

    def write(self, line: str) -> None:
        with self._lock:
            if self._broken:
                return
            try:
                self._stream.write(line)
                self._stream.flush()
            except OSError as error:  # the client is gone; the end of input follows
                self._broken = True
                log.warning("cannot write events any more: %s", error)


class ProgressEvents:
    """A job's progress callback: throttled events with the seconds since the job began."""

    def __init__(self, channel: EventChannel, request_id: str) -> None:
        self.channel, self.request_id = channel, request_id
        self.began = self.last_sent = time.monotonic()
        self.stage: str | None = None

    def __call__(self, progress: Progress) -> None:
        now = time.monotonic()
        routine = progress.stage == self.stage and progress.step < progress.total
        if routine and now - self.last_sent < PROGRESS_INTERVAL:
            return
        self.stage, self.last_sent = progress.stage, now
        self.channel.write(
            event_line(
                "progress",
                self.request_id,
                stage=progress.stage,
                step=progress.step,
                total=progress.total,
                elapsed=round(now - self.began, 3),
            )
        )


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

    # The reader thread.

    def read(self, lines: Iterable[str]) -> None:
        """Answer request lines until `shutdown` or the end of input."""
        for line in lines:
            if line.strip() and not self.handle_line(line):
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
            self.channel.write(
                error_line(request.id, internal_error(error), traceback.format_exc())
            )
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
        """Cancel every job; the main thread answers `shutdown` once the running one ended."""
        with self._lock:
            for job in list(self._jobs.values()):
                self._cancel_locked(job, "cancelled: the worker is shutting down")
        self._queue.put(Stop(request_id))

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
                if item.request_id is not None:
                    self.channel.write(event_line("result", item.request_id))
                log.info("shut down")
                return 0
            if self._begin(item):
                self._finish(item, self._outcome(item))

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
            return error_line(job.id, internal_error(error), traceback.format_exc())

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


def claim_stdout() -> TextIO:
    """A private handle on the real stdout for events; fd 1 and sys.stdout then go to stderr."""
    sys.stdout.flush()
    events = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return events


def request_lines() -> io.TextIOWrapper:
    """Stdin through a handle of its own, so the interpreter never waits on the reader's lock."""
    return io.TextIOWrapper(os.fdopen(os.dup(0), "rb"), encoding="utf-8", errors="replace")


def hello_line(pipeline: PartPackerPipeline) -> str:
    hello = {
        "event": "hello",
        "protocol": PROTOCOL_VERSION,
        "backend_version": __version__,
        **pipeline.device_report(),
        "pid": os.getpid(),
    }
    return json.dumps(hello) + "\n"


def serve(make_settings: Callable[[], PipelineSettings]) -> int:
    """Run the worker until `shutdown` or the end of input. Settings that cannot work (say, a
    device that is not there) end it before the hello, with one error event (id null)."""
    channel = EventChannel(claim_stdout())  # before any import can print
    try:
        from .pipeline import PartPackerPipeline

        pipeline = PartPackerPipeline(make_settings())
        hello = hello_line(pipeline)
    except PartPackerError as error:
        channel.write(error_line(None, error))
        raise
    except Exception as error:
        channel.write(error_line(None, internal_error(error), traceback.format_exc()))
        raise
    channel.write(hello)
    worker = Worker(pipeline, channel)
    reader = threading.Thread(
        target=worker.read, args=(request_lines(),), name="partpacker-requests", daemon=True
    )
    reader.start()
    return worker.run()
