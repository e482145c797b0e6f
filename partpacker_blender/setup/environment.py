"""The backend's own Python environment: a venv holding the backend's requirements at the exact
versions the tests ran with (the constraints file), with the PyTorch build that suits the
machine. No bpy.

The backend's code is not installed into it: the worker runs `python -m backend` with the
extension's worker/ folder on PYTHONPATH, so the environment only needs the backend's requirements.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import tomllib

from ..child_process import other_python_environment
from ..problems import Problem, described
from .runner import FailureExplainer, RunStatus, Step
from .torch_build import TorchBuild

REQUIREMENTS_FILE = "requirements.txt"
"""In the packaged backend/ folder; build.py writes it from pyproject.toml's dependencies."""
CONSTRAINTS_FILE = "constraints.txt"
"""In the packaged backend/ folder and at a checkout's root (tools/backend_constraints.py)."""
REQUIRES = re.compile(r"^# requires-(python|macos): >=(\d+)\.(\d+)\s*$", re.M)
MIN_PIP = "pip>=24.1"
"""The first pip that reports download progress as plain lines (`--progress-bar raw`)."""
PIP_PROGRESS = re.compile(r"Progress (\d+) of (\d+|\?)")
PIP_NEWS = ("Collecting", "Downloading", "Using cached", "Installing", "Successfully", "ERROR")


@dataclass(frozen=True)
class EnvironmentPlan:
    base_python: Path
    """The Python the environment is made from (>= 3.10)."""
    env_dir: Path
    requirements: tuple[str, ...]
    torch: TorchBuild
    system: str
    pip_args: tuple[str, ...] = ()
    """Extra arguments for every pip call, e.g. `--no-index --find-links DIR` offline."""
    constraints: Path | None = None
    """The exact versions to install (`pip install -c`); None: the newest within the ranges."""

    @property
    def python(self) -> Path:
        return environment_python(self.env_dir, self.system)


def environment_python(env_dir: Path, system: str) -> Path:
    return env_dir / ("Scripts/python.exe" if system == "Windows" else "bin/python")


def backend_requirements(backend_root: Path) -> tuple[str, ...]:
    """The backend's requirements: the packaged requirements file, or in a development checkout
    the dependencies of pyproject.toml (the file build.py generates the former from)."""
    shipped = backend_root / "backend" / REQUIREMENTS_FILE
    if shipped.is_file():
        lines = (line.split("#", 1)[0].strip() for line in shipped.read_text("utf-8").splitlines())
        return tuple(line for line in lines if line)
    pyproject = backend_root / "pyproject.toml"
    if pyproject.is_file():
        with pyproject.open("rb") as file:
            return tuple(tomllib.load(file)["project"]["dependencies"])
    raise Problem(
        f"neither {shipped} nor {pyproject} exists: the backend's requirements are unknown",
        "reinstall the extension",
    )


@dataclass(frozen=True)
class Constraints:
    path: Path
    requires_python: tuple[int, int]
    """The oldest Python every pinned version runs on."""
    requires_macos: tuple[int, int]
    """The oldest macOS every pinned version has wheels for."""


def backend_constraints(backend_root: Path) -> Constraints | None:
    """The pinned versions shipped with the backend (or a checkout's), None where there are none."""
    for path in (backend_root / "backend" / CONSTRAINTS_FILE, backend_root / CONSTRAINTS_FILE):
        if path.is_file():
            text = path.read_text("utf-8")
            needs = {m[1]: (int(m[2]), int(m[3])) for m in REQUIRES.finditer(text)}
            if set(needs) != {"python", "macos"}:
                raise Problem(
                    f"{path} does not say which Python and macOS it needs",
                    "reinstall the extension",
                )
            return Constraints(path, needs["python"], needs["macos"])
    return None


def requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
    return match[0].lower().replace("_", "-") if match else ""


def environment_version(env_dir: Path) -> tuple[int, int] | None:
    """The Python version an existing environment was made with (its pyvenv.cfg)."""
    config = env_dir / "pyvenv.cfg"
    if not config.is_file():
        return None
    match = re.search(r"^version(?:_info)?\s*=\s*(\d+)\.(\d+)", config.read_text("utf-8"), re.M)
    return (int(match[1]), int(match[2])) if match else None


def setup_steps(plan: EnvironmentPlan, base_version: tuple[int, int]) -> list[Step]:
    """Create the venv, update pip, install PyTorch from its index, then everything else.

    PyTorch alone comes from its index: its dependencies come with the rest from the default
    index, at the pinned versions, which the PyTorch index need not carry.

    An environment left by an earlier (cancelled) run is kept, so pip only adds what is
    missing; one made with another Python version is rebuilt from scratch."""
    torch = [r for r in plan.requirements if requirement_name(r) == "torch"] or ["torch"]
    torch_index = ["--index-url", plan.torch.index_url] if plan.torch.index_url else []
    pinned = ["-c", str(plan.constraints)] if plan.constraints is not None else []
    venv = [str(plan.base_python), "-m", "venv", str(plan.env_dir)]
    existing = environment_version(plan.env_dir)
    if existing is not None and existing != base_version:
        venv.append("--clear")
    env = other_python_environment()
    python = ".".join(map(str, base_version))
    return [
        Step(f"Create the environment (Python {python})", venv, env=env),
        Step("Update pip", _pip(plan, "--upgrade", MIN_PIP), read_pip_line, env=env),
        Step(
            f"Install PyTorch ({plan.torch.kind.upper()})",
            _pip(plan, "--progress-bar", "raw", "--no-deps", *torch, *torch_index, *pinned),
            read_pip_line,
            explain_failure=explain_torch_failure(plan.torch),
            env=env,
        ),
        Step(
            "Install the backend's packages",
            _pip(plan, "--progress-bar", "raw", *plan.requirements, *pinned),
            read_pip_line,
            env=env,
        ),
    ]


def explain_torch_failure(build: TorchBuild) -> FailureExplainer:
    """pip's failure to find the pinned PyTorch in a CUDA index, in the user's terms: the
    driver's CUDA version chose an index that has no build of that version."""

    def explain(output: list[str]) -> str | None:
        missing = next((line for line in output if "No matching distribution" in line), None)
        if missing is None or build.kind != "cuda":
            return None
        return described(
            f"the PyTorch version the backend was tested with has no build at {build.index_url} "
            f"({build.reason}): {missing.strip().removeprefix('ERROR: ')}",
            "update the NVIDIA driver (a newer driver supports a newer CUDA), then set up again",
        )

    return explain


def _pip(plan: EnvironmentPlan, *arguments: str) -> list[str]:
    pip = [str(plan.python), "-u", "-m", "pip", "install", "--disable-pip-version-check"]
    return [*pip, *arguments, *plan.pip_args]


def read_pip_line(line: str, status: RunStatus) -> None:
    """pip's raw progress lines give bytes; its other news names the package at hand."""
    progress = PIP_PROGRESS.search(line)
    if progress:
        status.done_bytes = int(progress[1])
        status.total_bytes = int(progress[2]) if progress[2].isdigit() else None
        return
    text = line.strip()
    if text.startswith(PIP_NEWS):
        status.detail = text
        if text.startswith(("Collecting", "Downloading")):
            status.done_bytes = status.total_bytes = None
