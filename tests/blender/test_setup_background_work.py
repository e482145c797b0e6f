"""What keeps Blender free while setup works: planning (probing Pythons and the GPU) runs on a
thread of its own, so a poll never waits for it; its steps follow it, its refusal ends the run
with the reason, a cancel during it ends the run at once. And what setup does first: a worker
using the environment is stopped (or setup refused while it runs a job), and the programs setup
and the worker start write UTF-8 whatever the system's code page."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import bpy
import pytest
from addon_setup import REPO_ROOT
from helpers import fake_python

ROBOT = REPO_ROOT / "examples" / "robot.png"


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_poll_never_waits_for_planning(setup_modules, tmp_path: Path) -> None:
    runner = setup_modules.runner
    release, planned_on = threading.Event(), []
    marker = tmp_path / "ran"

    def plan():
        planned_on.append(threading.current_thread())
        assert release.wait(30)
        return [runner.Step("after", [sys.executable, "-c", f"open({str(marker)!r}, 'w')"])]

    run = runner.StepRunner([runner.Planning("Look around", plan)])
    wait_for(lambda: planned_on)
    started = time.monotonic()
    for _ in range(20):
        assert run.poll() == runner.POLL_INTERVAL
    assert time.monotonic() - started < 5, "polls returned while planning was still blocked"
    assert run.status.label == "Look around" and not run.status.finished
    assert planned_on[0] is not threading.main_thread()
    release.set()
    wait_for(lambda: run.poll() is None)
    assert run.status.succeeded and run.status.steps == 2 and marker.is_file()


def test_a_refusal_while_planning_ends_the_run_with_the_reason(setup_modules) -> None:
    runner = setup_modules.runner

    def plan():
        raise setup_modules.python_finder.PythonNotUsable("no Python here", "install one")

    run = runner.StepRunner([runner.Planning("Look around", plan)])
    wait_for(lambda: run.poll() is None)
    assert not run.status.succeeded and not run.status.cancelled
    assert run.status.error == "No Python here. Install one"

    def broken():
        raise KeyError("version")

    run = runner.StepRunner([runner.Planning("Look around", broken)])
    wait_for(lambda: run.poll() is None)
    assert run.status.error.startswith("Look around failed:") and "version" in run.status.error


def test_a_cancel_during_planning_ends_the_run_and_nothing_after_runs(
    setup_modules, tmp_path
) -> None:
    runner, state = setup_modules.runner, setup_modules.state
    release = threading.Event()
    marker = tmp_path / "ran"

    def plan():
        release.wait(30)
        return [runner.Step("after", [sys.executable, "-c", f"open({str(marker)!r}, 'w')"])]

    setup = state.SetupState()
    activity = setup.start([runner.Planning("Look around", plan)])
    assert setup.cancel()
    assert activity.status.cancelled and setup.activity is None
    release.set()
    time.sleep(0.5)
    assert setup.poll() is None and not marker.exists()


def test_setup_stops_an_idle_worker_that_uses_its_environment(
    backend, prefs, online, tmp_path
) -> None:
    """The worker runs from the environment's Python (a link to the backend environment here);
    Set Up Backend stops it before anything else, then refuses the too-old Python given (so
    that environment is never touched)."""
    folder = tmp_path / "envs"
    folder.mkdir()
    (folder / "backend-env").symlink_to(Path(prefs.backend_python).parents[1])
    prefs.environment_folder = str(folder)
    prefs.backend_python = str(folder / "backend-env" / "bin" / "python")
    old = fake_python(tmp_path, """echo '{"version": [3, 9, 2], "executable": "/x/python"}'""")
    try:
        task = backend.start_prepare(ROBOT, tmp_path / "preview.png", bpy.context.scene.name)
        backend.wait(task)
        assert backend.client.state.value == "ready"
        with pytest.raises(RuntimeError, match="too old"):
            bpy.ops.partpacker.setup_backend(python=str(old))
        assert backend.client.state.value == "stopped"
    finally:
        prefs.environment_folder = ""


def test_setup_is_refused_while_a_job_runs_from_its_environment(
    backend, prefs, online, setup_modules, tmp_path
) -> None:
    """The Python given is too old: were setup not refused, it would stop at planning, so the
    environment (a link to the backend environment here) is never touched."""
    prefs.environment_folder = str(tmp_path)
    (tmp_path / "backend-env").symlink_to(Path(prefs.backend_python).parents[1])
    prefs.backend_python = str(tmp_path / "backend-env" / "bin" / "python")
    old = fake_python(tmp_path, """echo '{"version": [3, 9, 2], "executable": "/x/python"}'""")
    try:
        task = backend.start_prepare(ROBOT, tmp_path / "preview.png", bpy.context.scene.name)
        with pytest.raises(RuntimeError, match="running a job"):
            bpy.ops.partpacker.setup_backend(python=str(old))
        assert setup_modules.state.current().activity is None
        backend.wait(task)
        assert task.error is None, task.error
    finally:
        prefs.environment_folder = ""


def test_programs_started_for_setup_write_utf8(addon) -> None:
    environment = addon.child_process.other_python_environment()
    code = "import sys; print(sys.flags.utf8_mode, sys.stdout.encoding, '\\u00e9\\u6f22')"
    completed = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, timeout=60
    )
    assert completed.stdout.decode("utf-8").split() == ["1", "utf-8", "\u00e9\u6f22"]
