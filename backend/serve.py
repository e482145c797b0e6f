"""`python -m backend serve`: the worker process of backend/PROTOCOL.md. Only protocol events
reach the real stdout: file descriptor 1 is pointed at stderr at start, so whatever a library
prints lands in the log. A reader thread reads stdin (Worker.read), the main thread runs the jobs
(Worker.run)."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO, TextIO

from . import __version__
from .errors import PartPackerError
from .protocol import PROTOCOL_VERSION, EventChannel, error_line, read_lines, unexpected_error_line
from .worker import Worker

if TYPE_CHECKING:
    from .pipeline import PartPackerPipeline, PipelineSettings


def claim_stdout() -> TextIO:
    """A private handle on the real stdout for events; fd 1 and sys.stdout then go to stderr."""
    sys.stdout.flush()
    events = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return events


def request_stream() -> BinaryIO:
    """Stdin through a handle of its own, so the interpreter never waits on the reader's lock."""
    return os.fdopen(os.dup(0), "rb")


def hello_line(pipeline: PartPackerPipeline) -> str:
    hello = {
        "event": "hello",
        "protocol": PROTOCOL_VERSION,
        "backend_version": __version__,
        **pipeline.device_report(),
        "pid": os.getpid(),
    }
    return json.dumps(hello) + "\n"


def serve(make_settings: Callable[[], PipelineSettings]) -> int:
    """Run the worker until `shutdown` or the end of input. Settings that cannot work (say, a
    device that is not there) end it before the hello, with one error event (id null)."""
    channel = EventChannel(claim_stdout())  # before any import can print
    try:
        from .pipeline import PartPackerPipeline

        pipeline = PartPackerPipeline(make_settings())
        hello = hello_line(pipeline)
    except PartPackerError as error:
        channel.write(error_line(None, error))
        raise
    except Exception as error:
        channel.write(unexpected_error_line(None, error))
        raise
    channel.write(hello)
    worker = Worker(pipeline, channel)
    reader = threading.Thread(
        target=worker.read,
        args=(read_lines(request_stream()),),
        name="partpacker-requests",
        daemon=True,
    )
    reader.start()
    return worker.run()
