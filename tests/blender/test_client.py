"""The client's process handling with misbehaving workers: a backend package whose `serve`
speaks another protocol version, dies at start-up, or never says hello. (The real worker's
jobs, cancel, crash and hang are in test_end_to_end.py; workers that are stuck, slow or
runaway in test_client_stuck_workers.py.)"""

from __future__ import annotations

import json
import time

import pytest
from stand_in_worker import (
    finish,
    gone_soon,
    process_gone,
    settings,
    stand_in_backend,
    started_pid,
)


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
