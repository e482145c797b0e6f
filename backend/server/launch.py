"""Run the web app: its folder, the guard in front of Gradio, one uvicorn server on one socket.

serve(make_runner, options)   # blocks until Ctrl-C / SIGTERM; returns the exit code
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import fastapi
import gradio as gr
import uvicorn

from ..errors import BadInputError
from .app import build_app
from .guard import RequestGuard
from .jobs import CancelFlags
from .options import ServerOptions, is_loopback
from .runner import JobRunner
from .storage import WorkFolder

log = logging.getLogger(__name__)

GRADIO_FOLDER_ENV = "GRADIO_TEMP_DIR"
SYSTEM_FONTS = ("ui-sans-serif", "system-ui", "sans-serif")
"""The page's fonts: the machine's own, so that it loads nothing from the internet."""


def serve(make_runner: Callable[[], JobRunner], options: ServerOptions) -> int:
    """Listen first (a busy port fails before the models load), then make the runner (load the
    models: one copy for every job), then answer until stopped."""
    sock = bind(options.host, options.port)
    runner = make_runner()
    with work_root(options.work_dir) as root:
        # Gradio takes its upload folder from the environment when components and app are made.
        os.environ[GRADIO_FOLDER_ENV] = str(root)
        work = WorkFolder(root, options.keep_seconds, options.disk_budget_bytes)
        cancel_flags = CancelFlags()
        app = RequestGuard(
            mounted(build_app(runner, options, work, cancel_flags), options),
            options.token,
            options.max_upload_bytes,
            root,
        )
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5)
        server = JobCancellingServer(config, cancel_flags)
        stop_sweeping = threading.Event()
        work.sweep_every(stop_sweeping)
        announce(sock, options, root)
        try:
            with stop_on_sigterm(), contextlib.suppress(KeyboardInterrupt, Stopped):
                server.run(sockets=[sock])
        finally:
            stop_sweeping.set()
    log.info("stopped")
    return 0


class Stopped(Exception):
    """SIGTERM, raised where the server ran, so that the clean-up runs as for Ctrl-C."""


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """uvicorn stops gracefully on SIGINT and SIGTERM, then raises the signal again with the
    handler it found: this one turns that SIGTERM into Stopped instead of an abrupt exit."""

    def raise_stopped(signum: int, frame: FrameType | None) -> None:
        raise Stopped

    previous = signal.signal(signal.SIGTERM, raise_stopped)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class JobCancellingServer(uvicorn.Server):
    """A uvicorn server that cancels the running jobs as soon as it is told to stop, so that they
    end at their next check instead of running on through the graceful shutdown (which then
    waits up to 5 s for open event streams, and closes them)."""

    def __init__(self, config: uvicorn.Config, cancel_flags: CancelFlags) -> None:
        super().__init__(config)
        self.cancel_flags = cancel_flags

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.cancel_flags.cancel_all()
        super().handle_exit(sig, frame)


def mounted(demo: gr.Blocks, options: ServerOptions) -> fastapi.FastAPI:
    parent = fastapi.FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    return gr.mount_gradio_app(
        parent,
        demo,
        path="/",
        max_file_size=options.max_upload_bytes,
        show_error=True,
        footer_links=["api"],
        run_history=False,
        theme=gr.themes.Default(font=SYSTEM_FONTS),
    )


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, made before the models load so that a busy port fails at once."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as error:
        raise BadInputError(
            f"cannot listen on {host}:{port}: {error.strerror or error}",
            "choose another --port (0 picks a free one), or stop what is using it",
        ) from error
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


@contextlib.contextmanager
def work_root(folder: Path | None) -> Iterator[Path]:
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        yield folder.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="partpacker-web-") as temporary:
        yield Path(temporary).resolve()


def announce(sock: socket.socket, options: ServerOptions, root: Path) -> None:
    """One line on stdout with the address to open (port 0 resolved)."""
    host, port = sock.getsockname()[:2]
    shown = host if is_loopback(host) else socket.gethostname()
    if ":" in shown:
        shown = f"[{shown}]"
    access = "token required" if options.token else "open: no token"
    print(f"PartPacker web: http://{shown}:{port}/ ({access}; files in {root})", flush=True)
    log.info("listening on %s:%d", host, port)
