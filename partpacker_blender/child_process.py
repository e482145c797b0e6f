"""How the add-on runs other programs (the backend's Python, setup's pip and probes): without
Blender's own Python settings, without a console window on Windows, output read line by line by
one thread per stream, stopped without orphans. Plain Python: no bpy.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import queue
import subprocess
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

NO_CONSOLE_WINDOW = getattr(subprocess, "CREATE_NO_WINDOW", 0)
"""Windows opens a console window for each child of a GUI program unless told not to."""
BLENDER_PYTHON_SETTINGS = ("PYTHONHOME", "PYTHONPATH")
STDERR_TAIL_LINES = 200
MAX_LINE_CHARS = 4 * 1024 * 1024
"""Longer lines are cut to their start (a `CutLine`), the rest is read and dropped: a runaway
program must not fill Blender's memory (a 300 MB line cost it over 1 GB)."""
CUT_LINE_KEEPS = 200


def other_python_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment for a different Python, lines arriving as they are printed, in
    UTF-8 (as they are read) whatever the system's code page (Windows: often not UTF-8)."""
    env = {k: v for k, v in os.environ.items() if k not in BLENDER_PYTHON_SETTINGS}
    return {**env, **(extra or {}), "PYTHONUNBUFFERED": "1", "PYTHONUTF8": "1"}


def backend_environment(backend_root: Path, extra: dict[str, str]) -> dict[str, str]:
    """For the backend's Python: the backend package importable from `backend_root`, and no
    bytecode written into the (installed) extension folder."""
    return other_python_environment(
        {**extra, "PYTHONPATH": str(backend_root), "PYTHONDONTWRITEBYTECODE": "1"}
    )


class CutLine(str):
    """The first characters of a line longer than MAX_LINE_CHARS; `length` is its whole length."""

    length: int


def _cut_line(start: str, length: int) -> CutLine:
    line = CutLine(start[:CUT_LINE_KEEPS])
    line.length = length
    return line


class ChildProcess:
    """A started program whose stdout and stderr lines the main thread takes with `new_lines()`.

    The reader threads only move lines into a queue: they never touch bpy. With `send_input`
    the program's stdin is a pipe for `send()`; otherwise it reads nothing."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        cwd: Path | None,
        env: dict[str, str] | None,
        name: str,
        send_input: bool = False,
    ) -> None:
        """Raises OSError when the program cannot be started."""
        self._popen = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE if send_input else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            creationflags=NO_CONSOLE_WINDOW,
        )
        self._lines: queue.Queue[tuple[bool, str | None]] = queue.Queue()
        self._open_streams = 2
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        """The last lines of stderr taken so far, for error reports."""
        self._readers = [
            _start_reader(self._popen.stdout, True, self._lines, f"partpacker-{name}-stdout"),
            _start_reader(self._popen.stderr, False, self._lines, f"partpacker-{name}-stderr"),
        ]

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def exit_code(self) -> int | None:
        return self._popen.poll()

    @property
    def output_ended(self) -> bool:
        """Both streams have been read to their end and taken by `new_lines()`."""
        return self._open_streams == 0

    def new_lines(self) -> Iterator[tuple[bool, str]]:
        """The lines that have arrived since the last call, in order, as (from stdout, text).
        Never waits."""
        while True:
            try:
                from_stdout, line = self._lines.get_nowait()
            except queue.Empty:
                return
            if line is None:
                self._open_streams -= 1
                continue
            if not from_stdout:
                self.stderr_tail.append(line)
            yield from_stdout, line

    def stop_in_background(self, grace: float = 3.0, kill_after: float = 2.0) -> None:
        """`stop()` on a thread of its own: returns at once. Blender's exit waits for it."""
        thread = threading.Thread(
            target=self.stop, args=(grace, kill_after), name="partpacker-stop", daemon=True
        )
        _STOPPING[:] = [*(t for t in _STOPPING if t.is_alive()), thread]
        thread.start()

    def stderr_text(self, lines: int = 20) -> str:
        return "\n".join(list(self.stderr_tail)[-lines:])

    def send(self, line: str) -> bool:
        """Write one line to the program's input; False when it no longer reads it."""
        stdin = self._popen.stdin
        if stdin is None or stdin.closed:
            return False
        try:
            stdin.write(line)
            stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return False
        return True

    def stop(self, grace: float = 3.0, kill_after: float = 2.0) -> int:
        """Stop the program and wait for it: where it reads input, end of input first (the
        worker exits then) and `grace` seconds; then SIGTERM and `kill_after` seconds; then
        SIGKILL."""
        stdin = self._popen.stdin
        if stdin is not None and not stdin.closed:
            try:
                stdin.close()
            except OSError:
                log.debug("the input of process %d was already broken", self.pid)
            try:
                return self._popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                log.warning("process %d did not exit at the end of its input", self.pid)
        self._popen.terminate()
        try:
            return self._popen.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            log.warning(
                "process %d did not exit %.1f s after SIGTERM: killing it", self.pid, kill_after
            )
        return self.kill()

    def kill(self) -> int:
        """End the program at once (a hung one)."""
        self._popen.kill()
        return self._popen.wait()

    def wait(self) -> int:
        """Its exit code, once it has exited (`output_ended` says it is about to)."""
        return self._popen.wait()

    def finish_reading(self, timeout: float = 1.0) -> None:
        """Once the program has exited: let the reader threads take in what it wrote last."""
        for reader in self._readers:
            reader.join(timeout)


def _start_reader(
    stream: IO[str] | None,
    is_stdout: bool,
    lines: queue.Queue[tuple[bool, str | None]],
    name: str,
) -> threading.Thread:
    def read() -> None:
        assert stream is not None
        # Text mode turns the carriage returns of progress bars into line ends as well.
        while line := stream.readline(MAX_LINE_CHARS):
            if len(line) == MAX_LINE_CHARS and not line.endswith("\n"):
                line = _cut_line(line, len(line) + _skip_line(stream))
                lines.put((is_stdout, line))
            else:
                lines.put((is_stdout, line.rstrip("\r\n")))
        lines.put((is_stdout, None))

    thread = threading.Thread(target=read, name=name, daemon=True)
    thread.start()
    return thread


def _skip_line(stream: IO[str]) -> int:
    """Read the rest of the current line in bounded pieces; how many characters it had."""
    skipped = 0
    while piece := stream.readline(MAX_LINE_CHARS):
        skipped += len(piece)
        if piece.endswith("\n"):
            break
    return skipped


_STOPPING: list[threading.Thread] = []


@atexit.register
def finish_stopping() -> None:
    """Wait for the stops begun by `stop_in_background()`: no child outlives Blender."""
    while _STOPPING:
        _STOPPING.pop().join()
