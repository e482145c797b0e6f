"""Running setup steps in child processes: in order, streaming their output, failing with the
reason, cancelled; and the setup operators, REALLY building the backend's environment (from a
local wheelhouse, no network) and checking it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import bpy
import pytest
import tomllib
from addon_setup import REPO_ROOT, disable_addon, enable_addon
from helpers import fake_python

WHEELHOUSE = Path(os.environ.get("PARTPACKER_WHEELHOUSE", "/tmp/partpacker-wheelhouse"))


# --- Running steps -------------------------------------------------------------------------------


def python_step(runner: ModuleType, label: str, code: str, **fields):
    return runner.Step(label, [sys.executable, "-u", "-c", code], **fields)


def run_steps(setup_modules: ModuleType, steps):
    """Run `steps` to their end as the setup operators do in background mode."""
    setup = setup_modules.state.SetupState()
    activity = setup.start(steps)
    setup.wait(timeout=60)
    return activity.runner


BOTH_STREAMS = "import sys; print('one'); print('to stderr', file=sys.stderr)"


def test_steps_run_in_order_and_stream_their_output(setup_modules) -> None:
    runner = setup_modules.runner
    steps = [
        python_step(runner, "first", BOTH_STREAMS),
        python_step(runner, "second", "print('two')"),
    ]
    run = run_steps(setup_modules, steps)
    status = run.status
    assert status.succeeded and not status.error
    assert run.stdout == ["two"]
    assert sorted(run.output) == ["one", "to stderr", "two"]
    assert status.fraction == 1.0


def test_a_failing_step_stops_the_run_and_says_why(setup_modules) -> None:
    runner = setup_modules.runner
    failing = "import sys; print('ERROR: No matching distribution found for torch'); sys.exit(1)"
    steps = [
        python_step(runner, "Install PyTorch", failing),
        python_step(runner, "never", "open('should-not-run', 'w')"),
    ]
    status = run_steps(setup_modules, steps).status
    assert not status.succeeded and not status.cancelled
    assert status.label == "Install PyTorch"
    assert "exit code 1" in status.error
    assert "No matching distribution found for torch" in status.error


def test_a_step_may_judge_its_own_exit_code(setup_modules) -> None:
    runner = setup_modules.runner
    seen = []
    step = python_step(
        runner,
        "doctor",
        "import sys; print('{\"ok\": false}'); sys.exit(3)",
        check_exit=lambda code, stdout, output: seen.append((code, stdout)),
    )
    status = run_steps(setup_modules, [step]).status
    assert status.succeeded
    assert seen == [(3, ['{"ok": false}'])]


def test_cancel_stops_the_child_process(setup_modules) -> None:
    runner = setup_modules.runner
    code = "import os, time; print(os.getpid(), flush=True); time.sleep(120)"
    run = runner.StepRunner([python_step(runner, "Install PyTorch", code)])
    while not run.stdout:
        run.poll()
    pid = int(run.stdout[0])
    run.cancel()
    assert run.status.cancelled and run.status.finished and not run.status.succeeded
    assert "Install PyTorch" in run.status.error
    assert run.poll() is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_run_past_its_timeout_is_cancelled_and_its_process_stopped(setup_modules) -> None:
    code = "import os, time; print(os.getpid(), flush=True); time.sleep(120)"
    setup = setup_modules.state.SetupState()
    activity = setup.start([python_step(setup_modules.runner, "Install PyTorch", code)])
    while not activity.runner.stdout and not activity.status.finished:
        time.sleep(setup.poll() or 0.05)
    pid = int(activity.runner.stdout[0])
    with pytest.raises(TimeoutError, match=r"did not finish within 0\.5 s"):
        setup.wait(timeout=0.5)
    assert activity.status.cancelled and setup.activity is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_disabling_the_addon_stops_a_running_setup_step(addon, setup_modules) -> None:
    runner = setup_modules.runner
    code = "import os, time; print(os.getpid(), flush=True); time.sleep(120)"
    setup = setup_modules.state.current()
    setup.start([python_step(runner, "Install PyTorch", code)])
    deadline = time.monotonic() + 30
    run = setup.activity.runner
    while not run.stdout and time.monotonic() < deadline:
        setup.poll()
        time.sleep(0.05)
    pid = int(run.stdout[0])
    disable_addon()
    try:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    finally:
        assert enable_addon() is addon


# --- The operators -------------------------------------------------------------------------------


def test_setup_downloads_nothing_while_blender_is_offline(addon, tmp_path) -> None:
    assert not bpy.app.online_access
    assert not bpy.ops.partpacker.download_weights.poll()
    assert not bpy.ops.partpacker.setup_backend_with_python.poll()
    with pytest.raises(RuntimeError, match="Online access is off"):
        bpy.ops.partpacker.setup_backend()
    missing = tmp_path / "nowhere" / "python3"
    with pytest.raises(RuntimeError, match="does not exist"):  # past the offline check
        bpy.ops.partpacker.setup_backend(
            python=str(missing), pip_options=f"--no-index --find-links {tmp_path}"
        )


def test_a_picked_python_that_does_not_exist_is_refused(addon, prefs, online, tmp_path) -> None:
    prefs.backend_python = ""
    missing = tmp_path / "nowhere" / "python3"
    with pytest.raises(RuntimeError, match="does not exist"):
        bpy.ops.partpacker.setup_backend_with_python(filepath=str(missing))
    assert prefs.backend_python == ""
    assert not (Path(bpy.utils.extension_path_user(addon.__name__)) / "backend-env").exists()


def test_use_existing_python_points_at_it_and_checks_it(
    addon, prefs, backend_python: Path, tiny_weights: Path, monkeypatch, tmp_path
) -> None:
    """Works offline: nothing is downloaded. A too-old Python is refused first."""
    old = fake_python(tmp_path, """echo '{"version": [3, 9, 2], "executable": "/x/python"}'""")
    prefs.backend_python = ""
    with pytest.raises(RuntimeError, match="too old"):
        bpy.ops.partpacker.use_existing_python(filepath=str(old))
    assert prefs.backend_python == ""
    monkeypatch.setenv("PARTPACKER_MODEL_CONFIG", str(tiny_weights / "model_config.json"))
    prefs.weights_source, prefs.weights_dir, prefs.device = "FOLDER", str(tiny_weights), "cpu"
    addon.setup.backend_check.current().report = None
    bpy.context.preferences.is_dirty = False
    try:
        assert bpy.ops.partpacker.use_existing_python(filepath=str(backend_python)) == {"FINISHED"}
        report = addon.setup.backend_check.current().report  # before the weights change back
    finally:
        prefs.weights_source, prefs.weights_dir = "HF_CACHE", ""
    assert Path(prefs.backend_python).samefile(backend_python)
    assert bpy.context.preferences.is_dirty, "saved with the preferences, as a user's edit"
    assert report is not None and report.ok, report


def test_setup_backend_builds_a_working_environment_from_local_wheels(
    addon, prefs, online, backend_python: Path, tmp_path: Path
) -> None:
    """A real venv in the extension's user folder, pip installing the backend's requirements
    from a wheelhouse (no network), then the backend's doctor run from it."""
    wheelhouse = local_wheelhouse(backend_python)
    prefs.backend_python = ""
    result = bpy.ops.partpacker.setup_backend(
        python=str(backend_python),
        pip_options=f"--no-index --find-links {wheelhouse} --no-compile",
    )
    assert result == {"FINISHED"}
    user_folder = Path(bpy.utils.extension_path_user(addon.__name__))
    env_python = Path(prefs.backend_python)
    assert env_python.is_file() and env_python.is_relative_to(user_folder)
    assert not env_python.is_relative_to(REPO_ROOT)
    imports = "import torch, numpy, scipy, skimage, trimesh, rembg, huggingface_hub, safetensors"
    completed = subprocess.run(
        [str(env_python), "-c", f"{imports}; import sys; print(sys.prefix)"],
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stderr
    assert Path(completed.stdout.strip()) == env_python.parents[1]
    assert installed_versions(env_python) == pinned_versions(), "the exact versions, all of them"
    report = addon.setup.backend_check.current().report
    assert report is not None and report.findings
    assert any("torch" in finding.text.lower() for finding in report.findings), report


def installed_versions(python: Path) -> dict[str, str]:
    listed = [str(python), "-m", "pip", "list", "--format=freeze", "--exclude", "pip"]
    lines = subprocess.run(listed, capture_output=True, text=True, check=True).stdout.split()
    pairs = (line.split("==") for line in lines)
    return {name.lower().replace("_", "-"): version.split("+")[0] for name, version in pairs}


def pinned_versions() -> dict[str, str]:
    lines = (REPO_ROOT / "constraints.txt").read_text().splitlines()
    return dict(line.split("==") for line in lines if not line.startswith("#"))


def local_wheelhouse(backend_python: Path) -> Path:
    """Wheels for the backend's requirements at the versions of constraints.txt (plus a pip
    that reports progress) for the backend's Python, downloaded once per machine: pip's own
    find-links/cache serve torch."""
    with (REPO_ROOT / "pyproject.toml").open("rb") as file:
        requirements = tomllib.load(file)["project"]["dependencies"]
    constraints = REPO_ROOT / "constraints.txt"
    wanted = {"requirements": requirements, "constraints": constraints.read_text()}
    marker = WHEELHOUSE / "requirements.json"
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        return WHEELHOUSE
    download = [str(backend_python), "-m", "pip", "download", "-q", "-d", str(WHEELHOUSE)]
    subprocess.run([*download, "-c", str(constraints), "pip>=24.1", *requirements], check=True)
    marker.write_text(json.dumps(wanted))
    return WHEELHOUSE


def test_setup_can_be_cancelled_mid_install(setup_modules, backend_python: Path, tmp_path) -> None:
    environment, state = setup_modules.environment, setup_modules.state
    plan = environment.EnvironmentPlan(
        base_python=backend_python,
        env_dir=tmp_path / "env",
        requirements=("torch>=2.4",),
        torch=setup_modules.torch_build.choose_torch_build(
            setup_modules.machine.Machine("Linux", "x86_64")
        ),
        system="Linux",
        pip_args=("--no-index", "--find-links", str(tmp_path / "no-wheels-here")),
    )
    setup = state.SetupState()
    activity = setup.start(environment.setup_steps(plan, (3, 11)))
    while activity.status.step == 0 and not activity.status.finished:
        time.sleep(setup.poll() or 0.05)
    assert activity.status.label == "Update pip"
    assert setup.cancel()
    assert activity.status.cancelled and not activity.status.succeeded
    assert setup.activity is None and setup.last is activity
    assert (tmp_path / "env" / "bin" / "python").is_file(), "the venv step had finished"
