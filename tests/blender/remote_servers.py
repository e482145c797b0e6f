"""Real servers on 127.0.0.1 for the remote backend's tests, started once per module with the
backend's Python: `python -m backend web` with tiny weights and a token, and the stand-in of the
public Space (tests/space_standin.py). Import the fixtures into a test module to use them.

The server decodes at most at grid 32 (--grid-res-cap), as the server's own tests do: the
Space's smallest grid, 256, takes minutes with the tiny weights on a CPU.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOKEN = "studio-token-51c2"
START_TIMEOUT = 180.0
ADDRESS = re.compile(r"(http://\S+/) \(.*?; files in (.+)\)$")
REMBG_MODEL = (
    "import sys; sys.path.insert(0, 'tests/backend'); from pathlib import Path; "
    "from rembg_model import build_border_contrast_model as build; build(Path(sys.argv[1]))"
)


class Server:
    """A process whose stderr is kept, to read its log."""

    def __init__(self, command: list[str]) -> None:
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
        env.pop("BLENDER_USER_RESOURCES", None)
        self.process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.log: list[str] = []
        threading.Thread(target=self._keep_log, daemon=True).start()
        self.url = ""
        self.work_dir = Path()

    def _keep_log(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line.rstrip("\n"))

    def log_lines(self, pattern: str, timeout: float = 0.0, more_than: int = 0) -> list[str]:
        """The log's lines matching `pattern`, waiting up to `timeout` s for more than
        `more_than` of them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [line for line in list(self.log) if re.search(pattern, line)]
            if len(found) > more_than or time.monotonic() >= deadline:
                return found
            time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_web_server(backend_python: Path, tiny_weights: Path, rembg: Path) -> Server:
    server = Server(
        [
            *(str(backend_python), "-m", "backend", "web", "--port", "0"),
            *("--token", TOKEN, "--grid-res-cap", "32", "--device", "cpu"),
            *("--weights-dir", str(tiny_weights), "--rembg-model-path", str(rembg)),
            *("--model-config", str(tiny_weights / "model_config.json")),
        ]
    )
    assert server.process.stdout is not None
    line = server.process.stdout.readline().strip()
    match = ADDRESS.search(line)
    if match is None:
        server.stop()
        raise AssertionError(f"no address line: {line!r}\n" + "\n".join(server.log))
    server.url, server.work_dir = match[1], Path(match[2])
    return server


def start_standin(backend_python: Path) -> Server:
    port = free_port()
    server = Server([str(backend_python), "tests/space_standin.py", "--port", str(port)])
    server.url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert server.process.poll() is None, "the stand-in exited:\n" + "\n".join(server.log)
        try:
            with urllib.request.urlopen(server.url + "config", timeout=2):
                return server
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise AssertionError(f"the stand-in did not answer in {START_TIMEOUT} s")


@pytest.fixture(scope="module")
def rembg_model(backend_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rembg") / "segmenter.onnx"
    subprocess.run([str(backend_python), "-c", REMBG_MODEL, str(path)], cwd=REPO, check=True)
    return path


@pytest.fixture(scope="module")
def web_server(backend_python: Path, tiny_weights: Path, rembg_model: Path) -> Iterator[Server]:
    server = start_web_server(backend_python, tiny_weights, rembg_model)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def space_standin(backend_python: Path) -> Iterator[Server]:
    server = start_standin(backend_python)
    yield server
    server.stop()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """An address that takes connections and never answers (a listening socket nobody reads)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"


@pytest.fixture
def plain_web_server() -> Iterator[dict]:
    """A web server that is not PartPacker (Python's http.server): `answers` maps a path to the
    (status, JSON body) it gives; anything else is 404."""
    answers: dict[str, tuple[int, object]] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = answers.get(self.path, (404, {"detail": "Not Found"}))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"url": f"http://127.0.0.1:{server.server_address[1]}/", "answers": answers}
    server.shutdown()
    server.server_close()
