"""The client's process handling with misbehaving workers: a backend package whose `serve`
speaks another protocol version, dies at start-up, or never says hello. (The real worker's
jobs, cancel, crash and hang are in test_end_to_end.py.)"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

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
    while not (folder / "pid").is_file() and time.monotonic() < deadline:
        time.sleep(0.02)
    return int((folder / "pid").read_text())


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


def test_another_protocol_version_is_refused(addon, tmp_path):
    root = stand_in_backend(
        tmp_path,
        """
        import json, sys
        print(json.dumps({"event": "hello", "protocol": 99, "backend_version": "9"}), flush=True)
        sys.stdin.read()
        """,
        write_pid=True,
    )
    client = addon.client.WorkerClient(lambda: settings(addon, root))
    job = client.submit("status", {})
    pid = started_pid(root)
    outcome = finish(client, job)
    assert outcome.error.code == "protocol"
    assert "protocol 99" in outcome.error.message
    assert client.state is addon.client.WorkerState.STOPPED
    assert process_gone(pid)


def test_a_worker_that_dies_at_start_is_reported_with_its_last_words(addon, tmp_path):
    root = stand_in_backend(
        tmp_path,
        """
        import sys
        print("ImportError: no module named torch", file=sys.stderr, flush=True)
        sys.exit(3)
        """,
    )
    client = addon.client.WorkerClient(lambda: settings(addon, root))
    outcome = finish(client, client.submit("status", {}))
    assert outcome.error.code == "worker_died"
    assert "exit code 3" in outcome.error.message
    assert "no module named torch" in outcome.error.traceback
    assert client.state is addon.client.WorkerState.STOPPED


def test_settings_the_backend_refuses_reach_the_user_in_its_words(addon, tmp_path):
    root = stand_in_backend(
        tmp_path,
        """
        import json, sys
        error = {"event": "error", "id": None, "code": "bad_input", "traceback": "",
                 "message": "CUDA was requested but this PyTorch build sees no NVIDIA GPU",
                 "hint": "install a CUDA build of PyTorch"}
        print(json.dumps(error), flush=True)
        sys.exit(2)
        """,
    )
    client = addon.client.WorkerClient(lambda: settings(addon, root))
    outcome = finish(client, client.submit("status", {}))
    assert outcome.error.code == "bad_input"
    assert "sees no NVIDIA GPU" in outcome.error.message
    assert outcome.error.hint == "install a CUDA build of PyTorch"
    assert client.state is addon.client.WorkerState.STOPPED


def test_a_python_that_cannot_run_is_reported_not_raised_into_blender(addon, tmp_path):
    not_a_program = tmp_path / "python"
    not_a_program.write_text("just text")
    root = stand_in_backend(tmp_path, "")
    client = addon.client.WorkerClient(
        lambda: addon.client.WorkerSettings(python=not_a_program, backend_root=root)
    )
    with pytest.raises(addon.client.BackendUnavailable, match="cannot start the backend Python"):
        client.submit("status", {})
    assert client.state is addon.client.WorkerState.STOPPED


def test_a_worker_that_never_says_hello_is_stopped(addon, tmp_path):
    root = stand_in_backend(tmp_path, "import time\ntime.sleep(60)\n", write_pid=True)
    client = addon.client.WorkerClient(lambda: settings(addon, root, startup_timeout=0.5))
    job = client.submit("status", {})
    pid = started_pid(root)  # before the first poll, which may stop it already
    outcome = finish(client, job)
    assert outcome.error.code == "worker_start"
    assert process_gone(pid)


def test_stop_ends_a_worker_that_ignores_end_of_input(addon, tmp_path):
    root = stand_in_backend(
        tmp_path,
        """
        import json, signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(json.dumps({"event": "hello", "protocol": 1}), flush=True)
        time.sleep(60)
        """,
        write_pid=True,
    )
    client = addon.client.WorkerClient(lambda: settings(addon, root, stop_timeout=0.2))
    job = client.submit("status", {})
    deadline = time.monotonic() + 10
    while client.hello is None and time.monotonic() < deadline:
        client.poll()
        time.sleep(0.05)
    pid = started_pid(root)
    outcomes = []
    job.on_done = outcomes.append
    client.stop()
    assert outcomes[0].cancelled, "at once, while the worker is ended in the background"
    addon.child_process.finish_stopping()  # as Blender's exit does
    assert process_gone(pid)


def test_no_backend_python_means_not_set_up(addon, tmp_path):
    client = addon.client.WorkerClient(
        lambda: addon.client.WorkerSettings(python=None, backend_root=tmp_path)
    )
    with pytest.raises(addon.client.BackendUnavailable, match="not set up"):
        client.submit("status", {})
    missing = addon.client.WorkerClient(lambda: settings(addon, tmp_path))
    with pytest.raises(addon.client.BackendUnavailable, match="no backend package"):
        missing.submit("status", {})
    assert client.state is addon.client.WorkerState.STOPPED


def test_one_job_at_a_time(addon, tmp_path):
    root = stand_in_backend(tmp_path, "import sys\nsys.stdin.read()\n")
    client = addon.client.WorkerClient(lambda: settings(addon, root))
    client.submit("status", {})
    with pytest.raises(addon.client.BusyError):
        client.submit("status", {})
    client.stop()
    assert client.job is None


def test_an_idle_worker_is_stopped_after_the_keep_loaded_time(addon, tmp_path):
    root = stand_in_backend(
        tmp_path,
        """
        import json, sys
        print(json.dumps({"event": "hello", "protocol": 1, "device_name": "CPU"}), flush=True)
        sys.stdin.read()
        """,
        write_pid=True,
    )
    client = addon.client.WorkerClient(lambda: settings(addon, root, idle_timeout=0.3))
    job = client.submit("status", {})
    outcomes = []
    job.on_done = outcomes.append
    assert client.cancel()
    assert outcomes[0].cancelled, "a job not yet sent ends at once"
    pid = started_pid(root)
    deadline = time.monotonic() + 10
    states = set()
    while client.poll() is not None and time.monotonic() < deadline:
        states.add(client.state)
        time.sleep(0.05)
    assert addon.client.WorkerState.READY in states
    assert client.state is addon.client.WorkerState.STOPPED
    assert gone_soon(pid)


def test_the_worker_runs_without_blenders_python_settings(addon, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONHOME", "/blender/python")  # as Blender may set for itself
    monkeypatch.setenv("PYTHONPATH", "/blender/modules")
    root = stand_in_backend(
        tmp_path,
        """
        import json, os, pathlib, sys
        pathlib.Path("environment.json").write_text(json.dumps(dict(os.environ)))
        print(json.dumps({"event": "hello", "protocol": 1, "device_name": "CPU"}), flush=True)
        sys.stdin.read()
        """,
    )
    client = addon.client.WorkerClient(lambda: settings(addon, root, env={"HF_HUB_OFFLINE": "1"}))
    client.submit("status", {})
    deadline = time.monotonic() + 10
    while client.state is not addon.client.WorkerState.BUSY and time.monotonic() < deadline:
        client.poll()
        time.sleep(0.05)
    client.stop()
    environment = json.loads((root / "environment.json").read_text())
    assert "PYTHONHOME" not in environment
    assert environment["PYTHONPATH"] == str(root)
    assert environment["HF_HUB_OFFLINE"] == "1"
    assert environment["PYTHONDONTWRITEBYTECODE"] == "1"


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


def test_a_cancel_the_worker_does_not_answer_stops_it_and_ends_the_job_as_cancelled(
    addon, tmp_path
):
    root = stand_in_backend(tmp_path, HELLO_THEN_READ + indented("pass  # never answers"), True)
    client = addon.client.WorkerClient(lambda: settings(addon, root, cancel_grace=0.3))
    job = client.submit("generate", {})
    until_ready(client)
    pid = started_pid(root)
    assert client.cancel()
    outcome = finish(client, job)
    assert outcome.cancelled, outcome.error
    assert "did not stop the job" in outcome.error.message
    assert process_gone(pid)
    assert client.state is addon.client.WorkerState.STOPPED


def test_a_slow_job_that_keeps_reporting_progress_is_not_taken_for_hung(addon, tmp_path):
    body = """
        if request["type"] == "generate":
            import time
            for step in range(15):  # 1.5 s in all, three times the hang timeout
                say(event="progress", id=request["id"], stage="decode", step=step, total=15)
                time.sleep(0.1)
            say(event="result", id=request["id"], output_dir="x")
    """
    root = stand_in_backend(tmp_path, HELLO_THEN_READ + indented(body))
    client = addon.client.WorkerClient(lambda: settings(addon, root, hang_timeout=0.5))
    outcome = finish(client, client.submit("generate", {}))
    assert outcome.error is None, outcome.error
    assert outcome.result == {"output_dir": "x"}
    client.stop()


def test_a_job_with_new_settings_does_not_wait_for_the_old_worker_to_exit(addon, tmp_path):
    """The old worker ignores the end of its input and SIGTERM: stopping it takes the stop
    timeout twice, then SIGKILL. submit() leaves that to the background and goes on."""
    main = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    main += HELLO_THEN_READ + indented('say(event="result", id=request["id"])')
    main += "time.sleep(60)  # after the end of its input\n"
    root = stand_in_backend(tmp_path, main, write_pid=True)
    device = ["cpu"]
    client = addon.client.WorkerClient(
        lambda: settings(addon, root, device=device[0], stop_timeout=1.0)
    )
    assert finish(client, client.submit("status", {})).error is None
    old = started_pid(root)
    device[0] = "cuda"  # another launch command: the next job needs a new worker
    job = client.submit("status", {})
    assert not process_gone(old), "submit() returned before the old worker could be ended"
    assert finish(client, job).error is None
    assert started_pid(root) != old
    assert gone_soon(old), "ended in the background"
    client.stop()


def test_a_line_too_long_to_read_stops_the_worker_with_a_protocol_error(addon, tmp_path):
    body = """
        print("x" * 20_000_000, flush=True)  # a runaway line, 20 MB
    """
    root = stand_in_backend(tmp_path, HELLO_THEN_READ + indented(body), write_pid=True)
    client = addon.client.WorkerClient(lambda: settings(addon, root))
    job = client.submit("generate", {})
    pid = started_pid(root)
    outcome = finish(client, job)
    assert outcome.error.code == "protocol"
    assert "20 MB" in outcome.error.message
    assert process_gone(pid)
    assert client.state is addon.client.WorkerState.STOPPED


def indented(body: str) -> str:
    """A stand-in's request handling, as the body of HELLO_THEN_READ's loop."""
    return textwrap.indent(textwrap.dedent(body).strip("\n") + "\n", " " * 4)
