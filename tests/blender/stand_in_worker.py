"""Stand-in backends for the client's tests: a folder with a `backend` package whose
`python -m backend ...` runs a given script, and helpers to drive a WorkerClient against it."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from pathlib import Path

WRITE_PID = 'import os, pathlib; pathlib.Path("pid").write_text(str(os.getpid()))\n'


def stand_in_backend(folder: Path, main: str, write_pid: bool = False) -> Path:
    """A folder with a `backend` package whose `python -m backend ...` runs `main`, first
    writing its pid to `folder/pid` if `write_pid`."""
    package = folder / "backend"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text((WRITE_PID if write_pid else "") + textwrap.dedent(main))
    return folder


def started_pid(folder: Path, timeout: float = 10.0) -> int:
    """The pid a stand-in backend with `write_pid` wrote as its first act."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = (folder / "pid").read_text() if (folder / "pid").is_file() else ""
        if text.isdigit():  # a file seen between its creation and its write is still empty
            return int(text)
        time.sleep(0.02)
    raise AssertionError(f"the stand-in in {folder} wrote no pid")


def settings(addon, root: Path, **overrides):
    return addon.client.WorkerSettings(python=Path(sys.executable), backend_root=root, **overrides)


def finish(client, job, timeout: float = 20.0):
    outcomes = []
    job.on_done = outcomes.append
    client.wait(job, timeout=timeout)
    return outcomes[0]


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def gone_soon(pid: int, timeout: float = 20.0) -> bool:
    """Whether the process ends within `timeout` (a worker stopped in the background)."""
    deadline = time.monotonic() + timeout
    while not process_gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return process_gone(pid)


HELLO_THEN_READ = """
import json, sys
def say(**event):
    print(json.dumps(event), flush=True)
say(event="hello", protocol=1, device_name="CPU")
for line in sys.stdin:
    request = json.loads(line)
"""
"""A stand-in worker's start: hello, then each request as `request`, answered by the lines
that follow it (indented as the loop's body)."""


def until_ready(client, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while client.hello is None and time.monotonic() < deadline:
        client.poll()
        time.sleep(0.02)
    assert client.hello is not None, "the stand-in said hello"


def indented(body: str) -> str:
    """A stand-in's request handling, as the body of HELLO_THEN_READ's loop."""
    return textwrap.indent(textwrap.dedent(body).strip("\n") + "\n", " " * 4)
