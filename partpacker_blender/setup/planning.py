"""Planning Set Up Backend from what the operator read on the main thread and the machine's facts:
which Python, which PyTorch build, whether the exact versions apply, whether the folder suits
Windows, and what to do with a running worker first. Plain functions of plain inputs; the one
that reads the machine runs on the planning thread (runner.Planning). No bpy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path, PureWindowsPath

from .environment import Constraints, EnvironmentPlan, setup_steps
from .machine import Machine, read_machine
from .path_limits import environment_path_problem
from .python_finder import (
    MIN_VERSION,
    PythonInstall,
    architecture_problem,
    check_python,
    choose_python,
    find_pythons,
)
from .runner import Planning, Step
from .torch_build import choose_torch_build

log = logging.getLogger(__name__)

PLANNING_LABEL = "Look for Python and the GPU"


@dataclass(frozen=True)
class SetupRequest:
    """Set Up Backend's inputs, read from the preferences and files on the main thread."""

    env_dir: Path
    requirements: tuple[str, ...]
    constraints: Constraints | None
    pip_args: tuple[str, ...] = ()
    python: Path | None = None
    """The Python the user picked; None: the best one found."""


def plan_environment(
    request: SetupRequest, machine: Machine, found: Callable[[], list[PythonInstall]]
) -> tuple[EnvironmentPlan, PythonInstall]:
    """The environment to build and the Python to build it from. `found` lists this machine's
    Pythons (only called when the user picked none). Raises Problem (with what to do)."""
    too_long = environment_path_problem(PureWindowsPath(request.env_dir), machine)
    if too_long is not None:
        raise too_long
    torch = choose_torch_build(machine)
    tested_from = request.constraints.requires_python if request.constraints else MIN_VERSION
    if request.python is not None:
        base = check_python(request.python)
        unfit = architecture_problem(base, machine)
        if unfit is not None:
            raise unfit
    else:
        base = choose_python(found(), machine, tested_from)
    pins = request.constraints
    unpinned = why_not_pinned(pins, base.version[:2], machine) if pins is not None else None
    if unpinned:
        log.warning("%s: installing the newest versions within the backend's ranges", unpinned)
    constraints = None if unpinned else pins
    plan = EnvironmentPlan(
        base_python=base.executable,
        env_dir=request.env_dir,
        requirements=request.requirements,
        torch=torch,
        system=machine.system,
        pip_args=request.pip_args,
        constraints=constraints.path if constraints is not None else None,
    )
    return plan, base


def why_not_pinned(
    constraints: Constraints, python: tuple[int, int], machine: Machine
) -> str | None:
    """Why the exact versions cannot be installed here (their wheels need a newer Python or
    macOS), or None when they can."""
    if python < constraints.requires_python:
        return f"the pinned versions need Python {_version(constraints.requires_python)} or newer"
    if (
        machine.system == "Darwin"
        and (machine.macos_version or (0, 0)) < constraints.requires_macos
    ):
        return f"the pinned versions need macOS {_version(constraints.requires_macos)} or newer"
    return None


def _version(numbers: tuple[int, int]) -> str:
    return ".".join(map(str, numbers))


class EnvironmentSetup:
    """One Set Up Backend run: planned on the planning thread, then the venv and pip steps.
    `plan` is set once planning has succeeded (read it on the main thread after that)."""

    def __init__(self, request: SetupRequest, machine: Callable[[], Machine] = read_machine):
        self.request = request
        self._read_machine = machine
        self.plan: EnvironmentPlan | None = None

    def steps(self) -> list[Planning]:
        return [Planning(PLANNING_LABEL, self._plan_steps)]

    def _plan_steps(self) -> list[Step]:
        machine = self._read_machine()
        plan, base = plan_environment(self.request, machine, lambda: find_pythons(machine))
        log.info("setting up the backend with %s: %s", base.label, plan.torch.reason)
        self.plan = plan
        return setup_steps(plan, base.version[:2])


class WorkerAction(Enum):
    KEEP = "keep"
    """Not running, or running from another environment: setup does not touch its files."""
    STOP = "stop"
    """Idle but running from the environment setup will change (on Windows it holds its DLLs)."""
    WAIT = "wait"
    """A job is running from that environment: setup must not start."""


def worker_action(
    running: bool, busy: bool, worker_python: Path | None, env_dir: Path
) -> WorkerAction:
    """What to do with the backend worker before setup changes the environment in `env_dir`."""
    if not running or worker_python is None:
        return WorkerAction.KEEP
    if not _inside(worker_python, env_dir):
        return WorkerAction.KEEP
    return WorkerAction.WAIT if busy else WorkerAction.STOP


def _inside(path: Path, folder: Path) -> bool:
    return path.absolute().is_relative_to(folder.absolute())
