"""Running setup commands one after another in child processes, watched from the main thread.

`poll()` takes each step's output lines (child_process.py) on the main thread, updates `status`
and starts the next step. A `Planning` step works out the steps after it on a thread of its own
(probing Pythons and the GPU takes seconds), so `poll()` never waits. state.py polls the run.
No bpy here.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..child_process import ChildProcess
from ..problems import Problem, described

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.2
STOP_GRACE = 5.0
TAIL_LINES = 200


@dataclass
class RunStatus:
    """What the panel shows about a run."""

    step: int = 0
    steps: int = 0
    label: str = ""
    detail: str = ""
    """The latest line worth showing (the package or file being fetched)."""
    done_bytes: int | None = None
    total_bytes: int | None = None
    finished: bool = False
    succeeded: bool = False
    cancelled: bool = False
    error: str = ""

    @property
    def fraction(self) -> float:
        """Progress over all steps, each step one equal share, bytes within a step."""
        if self.finished and self.succeeded:
            return 1.0
        within = 0.0
        if self.done_bytes is not None and self.total_bytes:
            within = min(self.done_bytes / self.total_bytes, 1.0)
        return (self.step + within) / max(self.steps, 1)


LineReader = Callable[[str, RunStatus], None]
"""Reads one output line of a step (stdout or stderr) into the status: progress, current item."""
ExitCheck = Callable[[int, list[str], list[str]], str | None]
"""Judges a finished step from its exit code, its stdout lines and the tail of all its output
(stderr included): an error message or None."""
FailureExplainer = Callable[[list[str]], str | None]
"""Says in the user's terms why a step failed, from the tail of its output; None: no better
words than the runner's own."""


def show_line(line: str, status: RunStatus) -> None:
    if line.strip():
        status.detail = line.strip()


@dataclass(frozen=True)
class Step:
    label: str
    command: list[str]
    read_line: LineReader = show_line
    check_exit: ExitCheck | None = None
    """None: any exit code but 0 fails the run."""
    explain_failure: FailureExplainer | None = None
    cwd: Path | None = None
    env: dict[str, str] | None = None
    """The whole environment of the child; None: this process's environment."""


@dataclass(frozen=True)
class Planning:
    """A step that works out the steps to run after it: `plan` runs on a thread of its own and
    must not touch bpy. A Problem it raises ends the run with its message and hint."""

    label: str
    plan: Callable[[], Sequence[Step]]


class StepRunner:
    def __init__(self, steps: Sequence[Step | Planning]) -> None:
        if not steps:
            raise ValueError("a run needs at least one step")
        self.steps = list(steps)
        self.status = RunStatus(steps=len(self.steps))
        self.output: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.stdout: list[str] = []
        """The current step's standard output."""
        self._process: ChildProcess | None = None
        self._planned: queue.Queue[Sequence[Step] | Exception] = queue.Queue()
        self._start_step(0)

    def poll(self) -> float | None:
        """Handle the output so far; seconds until the next poll, None once the run has ended."""
        if self.status.finished:
            return None
        step = self.steps[self.status.step]
        if isinstance(step, Planning):
            self._take_plan()
            return None if self.status.finished else POLL_INTERVAL
        assert self._process is not None, "a step that could not start finished the run"
        for from_stdout, line in self._process.new_lines():
            if from_stdout:
                self.stdout.append(line)
            self.output.append(line)
            step.read_line(line, self.status)
        if self._process.output_ended:
            self._end_step()
        return None if self.status.finished else POLL_INTERVAL

    def cancel(self) -> None:
        """Stop the running step; the run ends as cancelled."""
        if self.status.finished:
            return
        if self._process is not None:
            self._process.stop(kill_after=STOP_GRACE)
        self._finish(cancelled=True, error=f"cancelled during: {self.status.label}")

    def output_text(self, lines: int = 30) -> str:
        return "\n".join(list(self.output)[-lines:])

    def _start_step(self, index: int) -> None:
        step = self.steps[index]
        self.status.step, self.status.label = index, step.label
        self.status.done_bytes = self.status.total_bytes = None
        self.stdout = []
        if isinstance(step, Planning):
            self._process = None
            thread = threading.Thread(
                target=self._plan, args=(step,), name="partpacker-setup-planning", daemon=True
            )
            thread.start()
            return
        log.info("%s: %s", step.label, " ".join(step.command))
        try:
            self._process = ChildProcess(step.command, cwd=step.cwd, env=step.env, name="setup")
        except OSError as error:
            self._finish(error=f"{step.label}: cannot run {step.command[0]}: {error}")

    def _plan(self, planning: Planning) -> None:
        """On the planning thread: hand the steps (or what went wrong) to the main thread."""
        try:
            self._planned.put(list(planning.plan()))
        except Exception as error:  # reported by the main thread as the run's error
            self._planned.put(error)

    def _take_plan(self) -> None:
        try:
            planned = self._planned.get_nowait()
        except queue.Empty:
            return
        if isinstance(planned, Problem):
            self._finish(error=described(planned.message, planned.hint))
            return
        if isinstance(planned, Exception):
            log.error("%s failed", self.status.label, exc_info=planned)
            self._finish(error=f"{self.status.label} failed: {planned}")
            return
        index = self.status.step + 1
        self.steps[index:index] = planned
        self.status.steps = len(self.steps)
        self._next_step()

    def _end_step(self) -> None:
        assert self._process is not None
        code = self._process.wait()
        step = self.steps[self.status.step]
        assert isinstance(step, Step)
        check = step.check_exit
        error = check(code, self.stdout, list(self.output)) if check is not None else None
        if check is None and code != 0:
            explained = step.explain_failure(list(self.output)) if step.explain_failure else None
            error = explained or f"{self.status.label} failed (exit code {code}): {self._cause()}"
        if error:
            self._finish(error=error)
        else:
            self._next_step()

    def _next_step(self) -> None:
        if self.status.step + 1 < len(self.steps):
            self._start_step(self.status.step + 1)
        else:
            self._finish(succeeded=True)

    def _cause(self) -> str:
        """The line that explains a failure: pip's and Python's error lines come last."""
        lines = [line.strip() for line in self.output if line.strip()]
        errors = [line for line in lines if line.startswith(("ERROR", "error:")) or "Error" in line]
        return (errors or lines or ["no output"])[-1]

    def _finish(self, *, succeeded: bool = False, cancelled: bool = False, error: str = "") -> None:
        self.status.finished, self.status.succeeded = True, succeeded
        self.status.cancelled, self.status.error = cancelled, error
        if error and not cancelled:
            log.error("%s\n%s", error, self.output_text())
