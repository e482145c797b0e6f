"""Starting the setup runs that build or choose the backend's Python, from the operators: read
the inputs on the main thread, make way (a worker using the environment), then start one run
(state.py) in which whatever takes time happens, probing Pythons and the GPU included."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

import bpy

from .. import session
from ..child_process import finish_stopping
from ..client import WorkerState
from ..problems import Problem
from ..settings import backend_root, environment_dir, save_preference, worker_settings
from . import backend_check, state
from .environment import backend_constraints, backend_requirements
from .planning import EnvironmentSetup, SetupRequest, WorkerAction, worker_action
from .python_finder import PythonInstall, check_python
from .runner import Planning, Step, StepRunner

OFFLINE_MESSAGE = "Online access is off (Preferences > System > Network)"


def use_backend_python(python: Path) -> None:
    save_preference("backend_python", str(python))
    backend_check.current().start(python)


def start_environment_setup(python_text: str, pip_options: str = "") -> Path:
    """Read the inputs, make way for the environment, then plan and build it in one run (its
    folder is returned). Raises Problem when it cannot start."""
    pip_args = pip_arguments(pip_options)
    if not bpy.app.online_access and "--no-index" not in pip_args:
        raise Problem(
            f"{OFFLINE_MESSAGE}: nothing can be downloaded",
            "allow online access, or install from a folder of wheels "
            "(pip_options='--no-index --find-links FOLDER')",
        )
    python = existing_file(Path(bpy.path.abspath(python_text))) if python_text else None
    root = backend_root()
    request = SetupRequest(
        env_dir=environment_dir(),
        requirements=backend_requirements(root),
        constraints=backend_constraints(root),
        pip_args=pip_args,
        python=python,
    )
    stopped = stop_worker_using(request.env_dir)
    setup = EnvironmentSetup(request)
    waiting = [Planning("Stop the backend", _worker_ended)] if stopped else []
    state.current().start([*waiting, *setup.steps()], lambda _: _use_environment(setup))
    return request.env_dir


def _worker_ended() -> list[Step]:
    """On the planning thread: wait for the stopped worker to exit (on Windows it holds the
    environment's files open until then); nothing to run after it."""
    finish_stopping()
    return []


def _use_environment(setup: EnvironmentSetup) -> None:
    assert setup.plan is not None, "the run succeeded, so planning did"
    use_backend_python(setup.plan.python)


def stop_worker_using(env_dir: Path) -> bool:
    """An idle worker started from `env_dir` is stopped before setup changes its files (on
    Windows it holds the environment's DLLs open); a running job there refuses setup. True
    when a worker was told to stop (it exits in the background)."""
    current = session.current()
    action = worker_action(
        running=current.client.state is not WorkerState.STOPPED,
        busy=current.task is not None,
        worker_python=worker_settings().python,
        env_dir=env_dir,
    )
    if action is WorkerAction.WAIT:
        raise Problem(
            "the backend is running a job with the environment that setup would change",
            "wait for the job to finish or cancel it, then set up again",
        )
    if action is WorkerAction.STOP:
        current.client.stop("the backend's environment is being set up again")
    return action is WorkerAction.STOP


def start_using_python(path: Path) -> None:
    """Check the Python at `path` (on the planning thread) and the backend with it; only then
    does the preference point at it."""
    existing_file(path)
    settings = worker_settings()
    check = backend_check.current()
    checked: list[PythonInstall] = []

    def plan() -> list[Step]:
        checked.append(check_python(path, for_venv=False))
        return [check.step(dataclasses.replace(settings, python=checked[0].executable))]

    def keep(_run: StepRunner) -> None:
        save_preference("backend_python", str(checked[0].executable))

    state.current().start([Planning("Check the Python", plan)], keep)


def existing_file(path: Path) -> Path:
    """`path`, checked here and now (quick) so that a wrong pick is refused before any run."""
    if not path.is_file():
        raise Problem(f"{path} does not exist", "pick the python executable itself")
    return path


def pip_arguments(text: str) -> tuple[str, ...]:
    try:
        return tuple(shlex.split(text))
    except ValueError as error:  # an unclosed quote
        raise Problem(f"the pip options cannot be read: {error}", "check their quotes") from error
