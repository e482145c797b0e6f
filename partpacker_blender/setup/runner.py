"""Running setup commands one after another in child processes, watched from the main thread.

A reader thread per output stream moves the lines of stdout and stderr into one queue;
`poll()` drains the queue on the main thread, updates `status` and starts the next step. The
UI's timer calls `poll()`; scripts and tests call it in a loop (`wait()`). No bpy here.
"""

from __future__ import annotations

import collections
import logging
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..child_python import NO_CONSOLE_WINDOW

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.2
STOP_GRACE = 5.0
TAIL_LINES = 200
_END = None


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
    cwd: Path | None = None
    env: dict[str, str] | None = None
    """The whole environment of the child; None: this process's environment."""


class StepRunner:
    def __init__(self, steps: Sequence[Step]) -> None:
        if not steps:
            raise ValueError("a run needs at least one step")
        self.steps = list(steps)
        self.status = RunStatus(steps=len(self.steps))
        self.output: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.stdout: list[str] = []
        """The current step's standard output."""
        self._lines: queue.Queue[tuple[bool, str | None]] = queue.Queue()
        self._open_streams = 0
        self._process: subprocess.Popen[str] | None = None
        self._start_step(0)

    def poll(self) -> float | None:
        """Handle the output so far; seconds until the next poll, None once the run has ended."""
        if self.status.finished:
            return None
        step = self.steps[self.status.step]
        while True:
            try:
                from_stdout, line = self._lines.get_nowait()
            except queue.Empty:
                return POLL_INTERVAL
            if line is _END:
                self._open_streams -= 1
                if self._open_streams == 0:
                    self._end_step()
                    return None if self.status.finished else POLL_INTERVAL
                continue
            if from_stdout:
                self.stdout.append(line)
            self.output.append(line)
            step.read_line(line, self.status)

    def wait(self, timeout: float | None = None) -> RunStatus:
        """Poll until the run has ended (scripts and tests: no timers there)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (interval := self.poll()) is not None:
            if deadline is not None and time.monotonic() > deadline:
                self.cancel()
                raise TimeoutError(f"{self.status.label} did not finish within {timeout} s")
            time.sleep(interval)
        return self.status

    def cancel(self) -> None:
        """Stop the running step; the run ends as cancelled."""
        if self.status.finished:
            return
        self._stop_process()
        self._finish(cancelled=True, error=f"cancelled during: {self.status.label}")

    def output_text(self, lines: int = 30) -> str:
        return "\n".join(list(self.output)[-lines:])

    def _start_step(self, index: int) -> None:
        step = self.steps[index]
        self.status.step, self.status.label = index, step.label
        self.status.done_bytes = self.status.total_bytes = None
        self.stdout = []
        log.info("%s: %s", step.label, " ".join(step.command))
        try:
            self._process = subprocess.Popen(
                step.command,
                cwd=step.cwd,
                env=step.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                errors="replace",
                bufsize=1,
                creationflags=NO_CONSOLE_WINDOW,
            )
        except OSError as error:
            self._finish(error=f"{step.label}: cannot run {step.command[0]}: {error}")
            return
        self._open_streams = 2
        _start_reader(self._process.stdout, True, self._lines)
        _start_reader(self._process.stderr, False, self._lines)

    def _end_step(self) -> None:
        assert self._process is not None
        code = self._process.wait()
        check = self.steps[self.status.step].check_exit
        error = check(code, self.stdout, list(self.output)) if check is not None else None
        if check is None and code != 0:
            error = f"{self.status.label} failed (exit code {code}): {self._cause()}"
        if error:
            self._finish(error=error)
        elif self.status.step + 1 < len(self.steps):
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

    def _stop_process(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _start_reader(
    stream: IO[str] | None, is_stdout: bool, lines: queue.Queue[tuple[bool, str | None]]
) -> None:
    def read() -> None:
        assert stream is not None
        # Text mode turns the carriage returns of progress bars into line ends as well.
        for line in stream:
            lines.put((is_stdout, line.rstrip("\n")))
        lines.put((is_stdout, _END))

    threading.Thread(target=read, name="partpacker-setup-output", daemon=True).start()
