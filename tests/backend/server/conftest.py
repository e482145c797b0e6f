"""Real server processes for the web tests, started once per session: `python -m backend web`
with tiny weights (open, and with a token) and the stand-in of the public Space.

The servers decode at most at grid 32 (--grid-res-cap): with the tiny weights on this 2-core
machine one job at the Space's smallest grid, 256, took 52-110 s (bench/server.py and by hand),
at its default 384 about 280 s. Everything else is as a user would run it.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

# The client side: no analytics thread, and no Hugging Face token of this machine sent along
# (gradio_client sends the saved one to every server unless told not to).
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_DISABLE_IMPLICIT_TOKEN"] = "1"
os.environ.pop("HF_TOKEN", None)

sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO = Path(__file__).resolve().parents[3]
TOKEN = "studio-token-3f9a"
GRID_CAP = 32
MAX_PIXELS = 1_000_000
MAX_UPLOAD_MB = 1
START_TIMEOUT = 120.0
ADDRESS = re.compile(r"(http://\S+/) \((.*?); files in (.+)\)$")


class ServerProcess:
    """A server started as a person starts it; its stdout's first line gives the address."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.args = args
        self.process = subprocess.Popen(
            args,
            cwd=REPO,
            env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.stderr_lines: list[str] = []
        threading.Thread(target=self._read_stderr, daemon=True).start()
        self.url, self.access, self.work_dir = self._read_address()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr_lines.append(line.rstrip("\n"))

    def _read_address(self) -> tuple[str, str, Path]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        match = ADDRESS.search(line)
        if match is None:
            self.process.wait(timeout=30)
            raise AssertionError(f"no address line: {line!r}\n" + "\n".join(self.stderr_lines))
        return match[1], match[2], Path(match[3])

    def log_lines(self, pattern: str, timeout: float = 0.0) -> list[str]:
        """stderr lines matching `pattern`, waiting up to `timeout` s for at least one."""
        deadline = time.monotonic() + timeout
        while True:
            found = [line for line in list(self.stderr_lines) if re.search(pattern, line)]
            if found or time.monotonic() >= deadline:
                return found
            time.sleep(0.05)

    def stop(self) -> int:
        self.process.terminate()
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def web_command(flags: list[str], *extra: str) -> list[str]:
    return [sys.executable, "-m", "backend", "web", *flags, "--port", "0", *extra]


@pytest.fixture(scope="session")
def server_flags(tiny_flags: list[str]) -> list[str]:
    return [
        *tiny_flags,
        *("--grid-res-cap", str(GRID_CAP)),
        *("--max-pixels", str(MAX_PIXELS)),
        *("--max-upload-mb", str(MAX_UPLOAD_MB)),
    ]


@pytest.fixture(scope="session")
def open_server(server_flags: list[str]) -> Iterator[ServerProcess]:
    """On 127.0.0.1 without a token, as `python -m backend web` starts by default."""
    server = ServerProcess(web_command(server_flags), env={"GRADIO_HEARTBEAT_INTERVAL": "1"})
    yield server
    server.stop()


@pytest.fixture(scope="session")
def token_server(server_flags: list[str]) -> Iterator[ServerProcess]:
    """With --token, and a queue of one waiting job."""
    server = ServerProcess(web_command(server_flags, "--token", TOKEN, "--max-queue", "1"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def space_standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    folder = tmp_path_factory.mktemp("standin")
    process = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "space_standin.py"), "--port", str(port)],
        cwd=REPO,
        env={**os.environ, "GRADIO_TEMP_DIR": str(folder)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    wait_until_answering(url, process)
    yield url
    process.terminate()
    process.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_answering(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the stand-in exited: {process.stderr.read()}")  # type: ignore[union-attr]
        try:
            if httpx.get(url + "config", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer in {START_TIMEOUT} s")


@pytest.fixture(scope="session")
def rgba_object(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A blue disc on a transparent background (no background removal needed)."""
    yy, xx = np.mgrid[:200, :240]
    pixels = np.zeros((200, 240, 4), dtype=np.uint8)
    pixels[(yy - 100) ** 2 + (xx - 120) ** 2 < 70**2] = (40, 80, 220, 255)
    path = tmp_path_factory.mktemp("rgba") / "disc.png"
    Image.fromarray(pixels).save(path)
    return path
