"""What an outside battery threw at the command line and the worker: special files as inputs
and outputs, numbers too large for a float, JSON nested or sized to break a parser, a job that
never ends, a Python without the backend's packages. Real subprocesses, tiny weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.protocol import MAX_REQUEST_BYTES
from backend.worker import STOP_GRACE
from tests.backend.special_files import NOT_BLOCKED_SECONDS, make_fifo, unblock
from tests.backend.test_worker import QUICK, REPO, ROBOT, WorkerSession, assert_error

EXIT_BAD_INPUT, EXIT_OUTPUT, EXIT_SETUP = 2, 5, 6
HUGE = 10**400
EXIT_WITHIN = STOP_GRACE + 25.0
"""The worker's promise is STOP_GRACE seconds; the rest is room for a busy test machine."""
STUCK = """
import threading
import backend.image

_load_image = backend.image.load_image


def load_image(path, *args, **kwargs):
    if "stuck" in str(path):  # a read that never returns, as from a hung network share
        threading.Event().wait()
    return _load_image(path, *args, **kwargs)


backend.image.load_image = load_image
"""


def run_backend(*args: str | Path, python: str = sys.executable, **env: str):
    return subprocess.run(
        [python, "-m", "backend", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )


def error_lines(completed: subprocess.CompletedProcess) -> tuple[str, str]:
    """The one `error:` line and the `hint:` line of a command that failed."""
    lines = completed.stderr.strip().splitlines()
    assert "Traceback" not in completed.stderr
    (error,) = [line for line in lines if line.startswith("error: ")]
    assert lines[-1].startswith("hint: "), completed.stderr
    return error, lines[-1]


@pytest.fixture(scope="module")
def worker(tiny_flags: list[str]) -> Iterator[WorkerSession]:
    session = WorkerSession(tiny_flags)
    assert session.next_event()["event"] == "hello"
    yield session
    session.close()


@pytest.fixture
def fresh_worker(tiny_flags: list[str]) -> Iterator[WorkerSession]:
    """A worker of its own, for a test that could leave it deaf (status needs no models)."""
    session = WorkerSession(tiny_flags)
    assert session.next_event()["event"] == "hello"
    yield session
    session.process.kill()
    session.process.wait()


@pytest.fixture
def stuck_worker(tiny_flags: list[str], tmp_path: Path) -> Iterator[WorkerSession]:
    """A worker whose image loading never returns for files named stuck*."""
    (tmp_path / "sitecustomize.py").write_text(STUCK)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    session = WorkerSession(tiny_flags, env)
    assert session.next_event()["event"] == "hello"
    yield session
    if session.process.poll() is None:
        session.process.kill()
        session.process.wait()


def test_generate_refuses_a_fifo_as_the_image_at_once(tiny_flags, tmp_path: Path) -> None:
    fifo = make_fifo(tmp_path)
    try:
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "backend",
                "generate",
                fifo,
                "-o",
                tmp_path / "out",
                *tiny_flags,
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=NOT_BLOCKED_SECONDS + 60,
        )
    finally:
        unblock(fifo)
    assert completed.returncode == EXIT_BAD_INPUT, completed.stderr
    error, _ = error_lines(completed)
    assert "is a named pipe (FIFO), not an image file" in error
    assert sorted(path.name for path in tmp_path.iterdir()) == ["pipe.png"]


def test_prepare_refuses_a_fifo_as_its_output_and_leaves_it(tmp_path: Path) -> None:
    fifo = make_fifo(tmp_path, "out.png")
    completed = run_backend("prepare", ROBOT, "-o", fifo)
    assert completed.returncode == EXIT_OUTPUT, completed.stderr
    error, _ = error_lines(completed)
    assert "is a named pipe (FIFO), not a file to write into" in error
    assert fifo.is_fifo()


def test_generate_refuses_a_fifo_as_its_job_folder(tiny_flags, tmp_path: Path) -> None:
    fifo = make_fifo(tmp_path, "out")
    completed = run_backend("generate", ROBOT, "-o", fifo, *tiny_flags, "--steps", "2")
    assert completed.returncode == EXIT_OUTPUT, completed.stderr
    error, _ = error_lines(completed)
    assert "the output folder" in error and "is a named pipe (FIFO)" in error
    assert fifo.is_fifo()


@pytest.mark.parametrize("flag", ["--seed", "--steps", "--cfg-scale"])
def test_a_number_too_large_for_a_float_is_bad_input(flag: str, tmp_path: Path) -> None:
    completed = run_backend("generate", ROBOT, "-o", tmp_path / "out", flag, str(HUGE))
    assert completed.returncode == EXIT_BAD_INPUT, completed.stderr
    error, _ = error_lines(completed)
    assert "must be between" in error and "a number of 401 digits" in error


def test_the_worker_refuses_special_files_and_huge_numbers_and_goes_on(
    worker: WorkerSession, tmp_path: Path
) -> None:
    fifo = make_fifo(tmp_path)
    try:
        prepare = worker.call("prepare", image=str(fifo), output=str(tmp_path / "p.png"))
        assert_error(prepare, "bad_input", prepare["id"])
        assert "named pipe (FIFO)" in prepare["message"]
        generate = worker.call("generate", image=str(fifo), output_dir=str(tmp_path / "o"))
        assert_error(generate, "bad_input", generate["id"])
    finally:
        unblock(fifo)
    device = worker.call("generate", image="/dev/zero", output_dir=str(tmp_path / "o"))
    assert "is a character device, not an image file" in device["message"]
    output = worker.call("prepare", image=str(ROBOT), output=str(make_fifo(tmp_path, "out.png")))
    assert_error(output, "output", output["id"])
    huge = worker.call("generate", image=str(ROBOT), output_dir="o", params={"seed": HUGE})
    assert_error(huge, "bad_input", huge["id"])
    assert "a number of 401 digits" in huge["message"]
    assert worker.call("status")["busy_job"] is None


def test_deeply_nested_json_is_one_protocol_error_and_the_worker_goes_on(
    fresh_worker: WorkerSession,
) -> None:
    fresh_worker.send_line("[" * 100_000)
    event = fresh_worker.finish(None)[1]
    assert_error(event, "protocol", None)
    assert "nested too deeply" in event["message"]
    assert fresh_worker.call("status")["queued"] == 0


def test_a_line_over_the_limit_is_skipped_as_one_protocol_error(
    fresh_worker: WorkerSession,
) -> None:
    padding = "x" * (3 * MAX_REQUEST_BYTES)
    fresh_worker.send_line(json.dumps({"id": "big", "type": "status", "padding": padding}))
    event = fresh_worker.finish(None)[1]
    assert_error(event, "protocol", None)
    assert f"at most {MAX_REQUEST_BYTES:,} bytes" in event["message"]
    follow = fresh_worker.request("status")
    assert fresh_worker.finish(follow)[1]["event"] == "result"
    assert fresh_worker.unclaimed(None) == [] and fresh_worker.unclaimed("big") == []


def start_stuck_job(worker: WorkerSession, tmp_path: Path) -> str:
    stuck = tmp_path / "stuck.png"
    stuck.write_bytes(ROBOT.read_bytes())
    job = worker.request(
        "generate", image=str(stuck), output_dir=str(tmp_path / "out"), params=QUICK
    )
    worker.events_until(job, lambda event: event.get("stage") == "prepare")
    assert worker.call("status")["busy_job"] == job
    return job


def test_the_worker_exits_soon_after_its_input_ends_though_a_job_is_stuck(
    stuck_worker: WorkerSession, tmp_path: Path
) -> None:
    job = start_stuck_job(stuck_worker, tmp_path)
    assert stuck_worker.process.stdin is not None
    stuck_worker.process.stdin.close()
    assert stuck_worker.process.wait(timeout=EXIT_WITHIN) == 0
    final = stuck_worker.finish(job)[1]
    assert_error(final, "cancelled", job)
    assert "abandoned" in final["message"]
    assert not (tmp_path / "out").exists()


def test_shutdown_is_answered_and_the_worker_exits_though_a_job_is_stuck(
    stuck_worker: WorkerSession, tmp_path: Path
) -> None:
    job = start_stuck_job(stuck_worker, tmp_path)
    shutdown = stuck_worker.request("shutdown")
    assert stuck_worker.process.wait(timeout=EXIT_WITHIN) == 0
    assert stuck_worker.finish(job)[1]["code"] == "cancelled"
    assert stuck_worker.finish(shutdown)[1]["event"] == "result"


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Python with nothing installed: no torch, no numpy."""
    folder = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", folder], check=True)
    python = folder / "bin" / "python"
    assert subprocess.run([python, "-c", "import torch"], capture_output=True).returncode != 0
    return str(python)


@pytest.mark.parametrize("command", ["generate", "prepare", "doctor"])
def test_a_python_without_the_backends_packages_is_told_to_set_up_the_backend(
    command: str, bare_python: str, tmp_path: Path
) -> None:
    args = {"generate": [ROBOT, "-o", tmp_path / "o"], "prepare": [ROBOT, "-o", tmp_path / "p"]}
    completed = run_backend(command, *args.get(command, []), python=bare_python, PYTHONPATH=REPO)
    assert completed.returncode == EXIT_SETUP, completed.stderr
    error, hint = error_lines(completed)
    assert f"this Python ({bare_python}) lacks the backend's packages" in error
    assert "bug" not in error + hint
    assert hint.startswith("hint: set up the backend")


def test_a_worker_without_the_backends_packages_says_so_in_its_one_event(
    bare_python: str,
) -> None:
    completed = subprocess.run(
        [bare_python, "-m", "backend", "serve"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        input="",
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert completed.returncode == EXIT_SETUP
    (line,) = completed.stdout.splitlines()
    event = json.loads(line)
    assert_error(event, "setup", None)
    assert "lacks the backend's packages" in event["message"]
