"""Files that are not plain files, as a hostile caller passes them: FIFOs, sockets, devices."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

NOT_BLOCKED_SECONDS = 20.0
"""A refusal comes at once; a call still running after this long is blocked for good."""


def make_fifo(folder: Path, name: str = "pipe.png") -> Path:
    path = folder / name
    os.mkfifo(path)
    return path


def make_socket(folder: Path, name: str = "socket.png") -> Path:
    path = folder / name
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()  # the socket file stays
    return path


def make_null_device(folder: Path, name: str = "null.png") -> Path:
    """A character device node like /dev/null (needs root, as the outside battery ran)."""
    path = folder / name
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs root (the FIFO and socket cases run anyway)")
    return path


def unblock(fifo: Path) -> None:
    """Let a reader blocked on opening `fifo` go: it then reads the end of the file."""
    with contextlib.suppress(OSError):  # ENXIO: no reader waits
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


def call_unblocked(call: Callable[[], Any], fifo: Path | None = None) -> BaseException | None:
    """What `call` raised (None if it returned), asserting it did not block on a file."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(NOT_BLOCKED_SECONDS)
    if thread.is_alive() and fifo is not None:
        unblock(fifo)
        thread.join(NOT_BLOCKED_SECONDS)
        pytest.fail(f"the call blocked on {fifo} (opened it for reading)")
    assert not thread.is_alive(), "the call blocked"
    return outcome[0]
