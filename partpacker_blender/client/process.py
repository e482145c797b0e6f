"""The worker as an operating-system process: start, talk over pipes, stop without orphans.

One reader thread per output stream: stdout lines go to a queue the main thread drains, stderr
lines to a bounded ring for error reports. The threads never touch bpy.
"""

from __future__ import annotations

import collections
import logging
import queue
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from ..child_python import NO_CONSOLE_WINDOW

log = logging.getLogger(__name__)

END_OF_STREAM = None


class WorkerProcess:
    def __init__(
        self,
        command: Sequence[str],
        cwd: Path,
        env: dict[str, str],
        log_lines: int = 200,
    ) -> None:
        self.command = list(command)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=log_lines)
        log.info("starting the backend worker: %s (in %s)", " ".join(self.command), cwd)
        self._popen = subprocess.Popen(
            self.command,
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            creationflags=NO_CONSOLE_WINDOW,
        )
        self._threads = [
            _start_reader(self._popen.stdout, self.lines.put, "stdout"),
            _start_reader(self._popen.stderr, self.stderr_tail.append, "stderr"),
        ]

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def exit_code(self) -> int | None:
        return self._popen.poll()

    def send(self, line: str) -> bool:
        """Write one request line; False when the worker no longer reads its input."""
        stdin = self._popen.stdin
        if stdin is None or stdin.closed:
            return False
        try:
            stdin.write(line)
            stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return False
        return True

    def stop(self, grace: float = 3.0, kill_after: float = 2.0) -> int | None:
        """Close stdin (the worker exits on end of input), then terminate, then kill."""
        if self._popen.stdin is not None and not self._popen.stdin.closed:
            try:
                self._popen.stdin.close()
            except OSError:
                log.debug("stdin of worker %d was already broken", self.pid)
        for wait, escalate in ((grace, self._popen.terminate), (kill_after, self._popen.kill)):
            try:
                return self._popen.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                log.warning("backend worker %d did not exit in %.1f s; stopping it", self.pid, wait)
                escalate()
        return self._popen.wait()

    def kill(self) -> None:
        """End a hung worker at once."""
        self._popen.kill()
        self._popen.wait()

    def finish_reading(self, timeout: float = 1.0) -> None:
        """Once the worker has exited: let the reader threads take in what it wrote last."""
        for thread in self._threads:
            thread.join(timeout)

    def stderr_text(self, lines: int = 20) -> str:
        return "\n".join(list(self.stderr_tail)[-lines:])


def _start_reader(stream: IO[str] | None, sink, name: str) -> threading.Thread:
    def read() -> None:
        assert stream is not None
        for line in stream:
            sink(line.rstrip("\r\n"))
        if name == "stdout":
            sink(END_OF_STREAM)

    thread = threading.Thread(target=read, name=f"partpacker-worker-{name}", daemon=True)
    thread.start()
    return thread
