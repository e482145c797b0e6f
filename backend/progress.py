"""One job's stages: how long each took, progress reported as they go, and where a cancel stops."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .errors import CancelCheck, Cancelled


@dataclass(frozen=True)
class Progress:
    stage: str
    step: int
    total: int


ProgressCallback = Callable[[Progress], None]


class JobProgress:
    """Per-stage wall times, and the progress and cancel hooks of one job."""

    def __init__(self, on_progress: ProgressCallback | None, should_cancel: CancelCheck | None):
        self.timings: dict[str, float] = {}
        self.on_progress = on_progress
        self.should_cancel = should_cancel

    @contextlib.contextmanager
    def stage(self, name: str, total: int = 1) -> Iterator[Callable[[int, int], None]]:
        self.check_cancel()
        self.report(name, 0, total)
        start = time.perf_counter()
        yield lambda step, steps: self.step(name, step, steps)
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start

    def step(self, stage: str, step: int, total: int) -> None:
        """A step of a stage done: report it, then stop here if the job was cancelled."""
        self.report(stage, step, total)
        self.check_cancel()

    def report(self, stage: str, step: int, total: int) -> None:
        if self.on_progress is not None:
            self.on_progress(Progress(stage, step, total))

    def check_cancel(self) -> None:
        if self.should_cancel is not None and self.should_cancel():
            raise Cancelled("generation cancelled")
