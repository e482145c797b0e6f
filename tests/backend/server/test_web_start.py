"""Starting and stopping `python -m backend web`: what refuses to start, and a clean stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import gradio as gr
import pytest
from conftest import REPO, ServerProcess, web_command
from gradio_client import Client, handle_file

from backend.server.app import user_errors

EXIT_BAD_INPUT, EXIT_WEIGHTS = 2, 3


def start(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "backend", "web", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PARTPACKER_WEB_TOKEN": ""},
    )


def assert_refused(started: subprocess.CompletedProcess, code: int, *words: str) -> None:
    assert started.returncode == code, started.stderr
    assert "Traceback" not in started.stderr and started.stdout == "", "it never served"
    for word in words:
        assert word in started.stderr, started.stderr


def test_a_public_address_without_a_token_refuses_to_start(tiny_flags: list[str]) -> None:
    started = start([*tiny_flags, "--host", "0.0.0.0"])
    assert_refused(
        started, EXIT_BAD_INPUT, "refusing to listen on 0.0.0.0 without a token", "--token"
    )


def test_a_busy_port_and_missing_weights_stop_it_at_start(
    tiny_flags: list[str], tmp_path: Path
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        assert_refused(
            start([*tiny_flags, "--port", port]),
            EXIT_BAD_INPUT,
            f"cannot listen on 127.0.0.1:{port}",
        )
    no_weights = [*tiny_flags, "--weights-dir", str(tmp_path), "--port", "0"]
    assert_refused(start(no_weights), EXIT_WEIGHTS, "flow.pt")


def test_sigterm_cancels_the_running_job_and_exits_cleanly(
    server_flags: list[str], rgba_object: Path, tmp_path: Path
) -> None:
    server = ServerProcess(web_command(server_flags))
    client = Client(server.url, download_files=tmp_path, verbose=False)
    job = client.submit(
        handle_file(str(rgba_object)), 100, 7, 256, 1, False, 100000, api_name="/process_3d"
    )
    while not any(unit.desc == "Sampling" for unit in job.status().progress_data or []):
        assert not job.done(), job.status()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=60) == 0
    assert server.log_lines(r"job \S+: cancelled"), "\n".join(server.stderr_lines)
    assert not server.work_dir.exists(), "its temporary folder is removed"
    assert not job.done() or job.exception() is not None, "no result came"


def test_a_bug_reaches_the_client_without_the_servers_details() -> None:
    with pytest.raises(gr.Error) as reported, user_errors("process_3d"):
        raise KeyError("/srv/secret/path")
    assert reported.value.title == "internal"
    assert "KeyError" in reported.value.message and "secret" not in reported.value.message


def test_web_is_a_command_with_the_generate_options_and_its_own() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "backend", "--help"], cwd=REPO, capture_output=True, text=True
    )
    assert "web" in listed.stdout
    helped = subprocess.run(
        [sys.executable, "-m", "backend", "web", "--help"], cwd=REPO, capture_output=True, text=True
    )
    assert helped.returncode == 0 and helped.stdout.startswith("usage: python -m backend web")
    for flag in (
        "--weights-dir",
        "--device",
        "--model-config",
        "--low-memory",
        "--compile",
        "--host",
        "--port",
        "--token",
        "--insecure",
        "--max-upload-mb",
        "--max-pixels",
        "--max-queue",
        "--keep-minutes",
        "--disk-budget-mb",
        "--grid-res-cap",
    ):
        assert flag in helped.stdout, flag
