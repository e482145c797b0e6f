"""The worker protocol's lines (backend/PROTOCOL.md): requests read with a bounded size, parsed
and checked; events written whole, from any thread."""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

from .errors import PartPackerError, describe_bug
from .params import GenerationParams

if TYPE_CHECKING:
    from .pipeline import Progress

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
MAX_REQUEST_BYTES = 1 << 20
"""The longest request line the worker reads (1 MiB, newline included); a longer one is
discarded unread, as one `protocol` error."""
JOB_FIELDS = {"prepare": ("image", "output"), "generate": ("image", "output_dir"), "unload": ()}
CONTROL_FIELDS = {"cancel": ("job",), "status": (), "shutdown": ()}
REQUEST_FIELDS = {**JOB_FIELDS, **CONTROL_FIELDS}
PROTOCOL_HINT = "see backend/PROTOCOL.md: one JSON object per line with an id and a type"
PROGRESS_INTERVAL = 0.1
"""Seconds between two progress events of one stage; a stage's first and last steps always go."""


class ProtocolError(PartPackerError):
    """A line that is not a request of this protocol."""

    code = "protocol"
    exit_code = 2


@dataclass(frozen=True)
class Request:
    id: str
    type: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class OversizedLine:
    """A request line longer than MAX_REQUEST_BYTES; its bytes were skipped."""

    size: int


def read_lines(stream: BinaryIO, limit: int = MAX_REQUEST_BYTES) -> Iterator[str | OversizedLine]:
    """The stream's lines, decoded; no more than `limit` bytes of one line are ever held."""
    while True:
        line = stream.readline(limit)
        if not line:
            return
        if line.endswith(b"\n") or len(line) < limit:
            yield line.decode("utf-8", errors="replace")
            continue
        size = len(line)
        while line and not line.endswith(b"\n"):
            line = stream.readline(limit)
            size += len(line)
        yield OversizedLine(size)


def oversized(line: OversizedLine) -> ProtocolError:
    return ProtocolError(
        f"the line is {line.size:,} bytes long; a request line has at most "
        f"{MAX_REQUEST_BYTES:,} bytes, and this one was skipped",
        PROTOCOL_HINT,
    )


def parse_request(line: str) -> Request:
    """A line's request; its `type` and fields are checked by `check_fields`. ProtocolError
    here means the line has no id to answer to."""
    try:
        message = json.loads(line)
    except RecursionError:
        raise ProtocolError("the line's JSON is nested too deeply", PROTOCOL_HINT) from None
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


def reused_id(request_id: str) -> ProtocolError:
    return ProtocolError(
        f"the id {request_id!r} belongs to a request that has not ended; this request is ignored",
        "give every request its own id",
    )


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


def unexpected_error_line(request_id: str | None, error: Exception) -> str:
    """The error line of an exception no code expected: `internal`, with the traceback of the
    exception being handled, unless it is a missing package (errors.describe_bug)."""
    described = describe_bug(error, "this is a bug; the traceback says where, please report it")
    trace = traceback.format_exc() if described.code == "internal" else ""
    return error_line(request_id, described, trace)


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
