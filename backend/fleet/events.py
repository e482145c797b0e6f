"""What a replica streams back for one job, in order: `started` (which replica took it), any
number of `progress`, then either one `file` per file of the job folder and a `result`, or one
`error`. Events are dicts of plain values, so that they mean the same on both sides whatever
pickle makes of our classes (an error's hint, for one, would not survive pickling)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import (
    BadInputError,
    Cancelled,
    DeviceOutOfMemoryError,
    OutputError,
    PartPackerError,
    WeightsError,
)
from ..params import GenerationParams
from ..pipeline import Progress

Event = dict[str, Any]

ERROR_CLASSES: dict[str, type[PartPackerError]] = {
    error.code: error
    for error in (BadInputError, WeightsError, DeviceOutOfMemoryError, OutputError, Cancelled)
}


@dataclass(frozen=True)
class JobRequest:
    """One generation as it travels to a replica: the image's bytes, not its path (the replica
    may be on another machine), and parameters whose seed is already drawn, so that a retry
    makes the same model."""

    image_name: str
    image_bytes: bytes
    params: GenerationParams


@dataclass(frozen=True)
class ReplicaInfo:
    """Which replica ran a job: Serve's replica id, the machine and the process."""

    replica_id: str
    node: str
    pid: int
    device_name: str
    backend_version: str

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ReplicaInfo:
        return cls(**values)


def started(replica: ReplicaInfo) -> Event:
    return {"kind": "started", "replica": asdict(replica)}


def progress(update: Progress) -> Event:
    return {"kind": "progress", "stage": update.stage, "step": update.step, "total": update.total}


def to_progress(event: Event) -> Progress:
    return Progress(event["stage"], event["step"], event["total"])


def file(name: str, data: bytes) -> Event:
    return {"kind": "file", "name": name, "data": data}


def result(seed: int, timings: dict[str, float], parts: list[dict[str, Any]]) -> Event:
    return {"kind": "result", "seed": seed, "timings": timings, "parts": parts}


def error(failure: PartPackerError) -> Event:
    return {"kind": "error", "code": failure.code, "message": failure.message, "hint": failure.hint}


def to_error(event: Event) -> PartPackerError:
    """The error a replica reported, as the class the single server raises for it."""
    error_class = ERROR_CLASSES.get(event["code"], PartPackerError)
    return error_class(event["message"], event["hint"])


def safe_file_name(name: str) -> str:
    """A file name from the other side, never a path: a replica writes only into its own job
    folder, the front end only into the job's output folder."""
    base = os.path.basename(name)
    if base in ("", ".", "..") or base != name:
        raise BadInputError(f"{name!r} is not a plain file name")
    return base
