"""The worker protocol's messages (backend/PROTOCOL.md, version 1) as plain dataclasses."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

PROTOCOL_VERSION = 1


class ProtocolError(ValueError):
    """A line from the worker that is not an event of this protocol."""


@dataclass(frozen=True)
class Hello:
    protocol: int
    backend_version: str
    device: str
    device_name: str
    dtype: str
    memory_total_bytes: int | None
    pid: int | None


@dataclass(frozen=True)
class Progress:
    id: str
    stage: str
    step: int
    total: int
    elapsed: float


@dataclass(frozen=True)
class Result:
    id: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class JobError:
    """An `error` event, or a failure the client found itself (dead or hung worker)."""

    code: str
    message: str
    hint: str = ""
    traceback: str = ""
    id: str | None = None

    @property
    def is_cancellation(self) -> bool:
        return self.code == "cancelled"


Event = Hello | Progress | Result | JobError


@dataclass(frozen=True)
class Request:
    id: str
    type: str
    fields: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> str:
        return json.dumps({"id": self.id, "type": self.type, **self.fields}) + "\n"


def parse_event(line: str) -> Event:
    try:
        message = json.loads(line)
    except ValueError as error:
        raise ProtocolError(f"the worker wrote a line that is not JSON: {line[:200]!r}") from error
    if not isinstance(message, dict):
        raise ProtocolError(f"the worker wrote JSON that is not an object: {line[:200]!r}")
    kind = message.get("event")
    try:
        if kind == "hello":
            return _hello(message)
        if kind == "progress":
            return _progress(message)
        if kind == "result":
            fields = {k: v for k, v in message.items() if k not in ("event", "id")}
            return Result(str(message["id"]), fields)
        if kind == "error":
            return _error(message)
    except (KeyError, TypeError, ValueError) as error:
        raise ProtocolError(f"malformed {kind} event from the worker: {line[:200]!r}") from error
    raise ProtocolError(f"unknown event {kind!r} from the worker")


def _hello(message: dict[str, Any]) -> Hello:
    return Hello(
        protocol=int(message["protocol"]),
        backend_version=str(message.get("backend_version", "")),
        device=str(message.get("device", "")),
        device_name=str(message.get("device_name", "")),
        dtype=str(message.get("dtype", "")),
        memory_total_bytes=message.get("memory_total_bytes"),
        pid=message.get("pid"),
    )


def _progress(message: dict[str, Any]) -> Progress:
    return Progress(
        id=str(message["id"]),
        stage=str(message["stage"]),
        step=int(message.get("step", 0)),
        total=int(message.get("total", 0)),
        elapsed=float(message.get("elapsed", 0.0)),
    )


def _error(message: dict[str, Any]) -> JobError:
    job_id = message.get("id")
    return JobError(
        code=str(message["code"]),
        message=str(message.get("message", "")),
        hint=str(message.get("hint") or ""),
        traceback=str(message.get("traceback") or ""),
        id=None if job_id is None else str(job_id),
    )
