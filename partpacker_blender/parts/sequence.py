"""A sequence of generate jobs run one after another on the session's backend (one job at a
time): variants of one image, or a folder of images. Each finished result is moved aside so the
results stand apart; a failed job is recorded with its reason and the next one starts; a
cancelled job stops the rest.

`step()` is a plain function: the UI calls it from a timer (sequence_timer.py), scripts and
background mode through `run_to_end()`, which blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import bpy

from ..client import BusyError
from ..generation import start_generation
from ..importer import ImportedParts
from ..problems import Problem
from ..session import Task, current

GROUP_KEY = "partpacker_group"
"""Custom property of a result's Empty: the sequence it came from (for Keep This Variant)."""


@dataclass
class SequenceItem:
    label: str
    """What the user knows the job by: "seed 42", "chair.png"."""
    given: dict[str, Any]
    """start_generation's overrides: image_path, seed, ..."""
    offset: tuple[float, float, float]
    """How far the result moves from where the importer puts it."""
    status: str = "waiting"
    """waiting, running, done, failed, cancelled."""
    error: str = ""
    task: Task | None = None
    imported: ImportedParts | None = None


@dataclass
class JobSequence:
    kind: str
    """"variants" or "batch": the panel's words for it."""
    items: list[SequenceItem]
    group: str = ""
    cancelled: bool = False
    running: SequenceItem | None = field(default=None, repr=False)
    origin: tuple[float, ...] | None = field(default=None, repr=False)
    """Where the first result landed (the importer moves one aside from what stands at the
    cursor); the others go at their offsets from it."""

    @property
    def ended(self) -> bool:
        return self.running is None and all(i.status != "waiting" for i in self.items)

    @property
    def position(self) -> int:
        """1-based number of the item running (or last settled)."""
        settled = sum(i.status not in ("waiting", "running") for i in self.items)
        return min(len(self.items), settled + (self.running is not None))

    def count(self, status: str) -> int:
        return sum(i.status == status for i in self.items)

    def results(self) -> list[ImportedParts]:
        return [i.imported for i in self.items if i.imported is not None]

    def failures(self) -> list[SequenceItem]:
        return [i for i in self.items if i.status == "failed"]

    def summary(self) -> list[str]:
        """What happened, as lines: the counts, then each failure and why."""
        counts = f"{self.count('done')} of {len(self.items)} done"
        for status in ("failed", "cancelled"):
            if self.count(status):
                counts += f", {self.count(status)} {status}"
        return [counts, *(f"{item.label}: {item.error}" for item in self.failures())]

    def cancel(self) -> None:
        """Stop after the running job, which is cancelled too."""
        self.cancelled = True
        if self.running is not None:
            current().cancel()

    def step(self, context: bpy.types.Context) -> bool:
        """Settle a finished job and start the next; False once the sequence has ended."""
        if self.running is not None:
            if current().task is self.running.task:
                return True  # still running
            self._settle(self.running)
            self.running = None
        waiting = [i for i in self.items if i.status == "waiting"]
        if self.cancelled:
            for item in waiting:
                item.status = "cancelled"
            return False
        if not waiting:
            return False
        item = waiting[0]
        try:
            item.task = start_generation(context, item.given)
        except BusyError:
            return True  # another job (not ours) runs: try again on the next step
        except Problem as error:
            item.status, item.error = "failed", reason(error.message, error.hint)
            return True
        item.status, self.running = "running", item
        return True

    def _settle(self, item: SequenceItem) -> None:
        task = item.task
        assert task is not None
        if task.error is not None:
            item.error = reason(task.error.message, task.error.hint)
            item.status = "cancelled" if task.error.is_cancellation else "failed"
            self.cancelled |= task.error.is_cancellation
            return
        assert task.imported is not None
        item.status, item.imported = "done", task.imported
        root = task.imported.root
        if self.origin is None:
            self.origin = tuple(root.location)
        root.location = [a + b for a, b in zip(self.origin, item.offset, strict=True)]
        if self.group:
            root[GROUP_KEY] = self.group


def reason(message: str, hint: str) -> str:
    """A failure as the summary lists it (file names keep their case)."""
    return f"{message} ({hint})" if hint else message


def run_to_end(sequence: JobSequence, context: bpy.types.Context) -> JobSequence:
    """Run every job, blocking (scripts, background mode). Raises BusyError while another job
    runs; nothing starts then."""
    if current().task is not None:
        raise BusyError("a job is already running")
    while sequence.step(context):
        if sequence.running is not None:
            current().wait(sequence.running.task)
    return sequence


_CURRENT: JobSequence | None = None


def spacing(context: bpy.types.Context, overrides: dict[str, Any]) -> float:
    """Distance between neighbouring results: the model's size and a quarter."""
    return 1.25 * float(overrides.get("size", context.scene.partpacker.size))


def current_sequence() -> JobSequence | None:
    """The sequence the panel shows: running, or the last one until it is dismissed."""
    return _CURRENT


def set_current_sequence(sequence: JobSequence | None) -> None:
    global _CURRENT
    _CURRENT = sequence
