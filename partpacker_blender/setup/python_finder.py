"""Finding a Python >= 3.10 on this machine to build the backend's environment from, and
refusing one that cannot run PyTorch there (too old, 32-bit, Intel code on Apple silicon). The
decisions are plain functions of the probe's answers and the machine's facts (machine.py). No bpy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..child_process import NO_CONSOLE_WINDOW, other_python_environment
from ..problems import Problem
from .machine import Machine, architecture_name, read_machine

MIN_VERSION = (3, 10)
NEWEST_SUPPORTED = (3, 13)
"""The newest Python with PyTorch wheels when this was written: newer ones are picked last."""
PROBE_TIMEOUT = 20.0
PROBE = (
    "print(json.dumps({'version': list(sys.version_info[:3]), 'executable': sys.executable, "
    "'machine': platform.machine(), 'bits': struct.calcsize('P') * 8}))"
)
# ensurepip is what `python -m venv` needs to put pip into the new environment; some Linux
# distributions ship it in a separate package (python3-venv).
VENV_MODULES = "venv, ensurepip"
PYTHON_NAMES = ("python3.13", "python3.12", "python3.11", "python3.10", "python3", "python")
MACOS_STUB_FOLDER = Path("/usr/bin")
"""Where macOS keeps `python3`, which without the Command Line Tools only offers to install them."""


class PythonNotUsable(Problem):
    """A Python that cannot build the backend's environment."""


@dataclass(frozen=True)
class PythonInstall:
    executable: Path
    version: tuple[int, int, int]
    architecture: str = ""
    """What the interpreter runs as (its platform.machine(), named as machine.py names them)."""
    bits: int = 64

    @property
    def label(self) -> str:
        return f"Python {'.'.join(map(str, self.version))} ({self.executable})"


def find_pythons(machine: Machine | None = None) -> list[PythonInstall]:
    """Every Python >= 3.10 found, newest first, each interpreter once."""
    found: dict[Path, PythonInstall] = {}
    for command in candidate_commands(machine or read_machine()):
        try:
            install = probe_python(command)
        except PythonNotUsable:
            continue
        # python, python3 and python3.11 in one folder are usually one interpreter.
        found.setdefault(install.executable.resolve(), install)
    return sorted(found.values(), key=lambda install: install.version, reverse=True)


def choose_python(
    found: list[PythonInstall],
    machine: Machine | None = None,
    tested_from: tuple[int, int] = MIN_VERSION,
) -> PythonInstall:
    """The newest Python that suits `machine`, preferring versions from `tested_from` (the
    oldest the pinned packages run on) up to NEWEST_SUPPORTED; the first refusal's reason when
    every one found is unfit."""
    unfit = [architecture_problem(p, machine) for p in found] if machine else [None] * len(found)
    fitting = [p for p, problem in zip(found, unfit, strict=True) if problem is None]
    if not fitting:
        refused = next((problem for problem in unfit if problem is not None), None)
        raise refused or PythonNotUsable(
            "no Python 3.10 or newer was found on this computer",
            "install Python 3.12 from python.org, or pick one: Set Up with Another Python",
        )
    ranked = sorted(
        fitting,
        key=lambda p: (p.version[:2] <= NEWEST_SUPPORTED, p.version[:2] >= tested_from),
        reverse=True,
    )
    return ranked[0]


def architecture_problem(install: PythonInstall, machine: Machine) -> PythonNotUsable | None:
    """Why `install` cannot run PyTorch on `machine`, or None."""
    if install.bits != 64:
        return PythonNotUsable(
            f"{install.label} is a {install.bits}-bit Python: PyTorch needs a 64-bit one",
            "install the 64-bit Python from python.org",
        )
    apple_silicon = machine.system == "Darwin" and machine.architecture == "arm64"
    if apple_silicon and install.architecture not in ("", "arm64"):
        return PythonNotUsable(
            f"{install.label} runs as Intel code (under Rosetta) on this Apple silicon Mac: "
            "it would get no Apple GPU and no PyTorch the backend can use",
            "install Blender for Apple silicon: this Blender is the Intel one, and the Pythons "
            "it starts run as Intel code too"
            if machine.rosetta
            else "install Python from python.org (its macOS installer runs natively) or with "
            "Homebrew (/opt/homebrew/bin/python3)",
        )
    return None


def check_python(path: Path, for_venv: bool = True) -> PythonInstall:
    """The Python at `path` if it is new enough (and, `for_venv`, can build the environment);
    PythonNotUsable says why not."""
    if not path.is_file():
        raise PythonNotUsable(f"{path} does not exist", "pick the python executable itself")
    return probe_python([str(path)], for_venv)


def probe_python(command: Sequence[str], for_venv: bool = True) -> PythonInstall:
    modules = "json, platform, struct, sys" + (f", {VENV_MODULES}" if for_venv else "")
    try:
        completed = subprocess.run(
            [*command, "-c", f"import {modules}; {PROBE}"],
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=PROBE_TIMEOUT,
            env=other_python_environment(),
            creationflags=NO_CONSOLE_WINDOW,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise PythonNotUsable(f"{' '.join(command)} does not run: {error}") from error
    if completed.returncode != 0:
        detail = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        if not for_venv:
            raise PythonNotUsable(f"{' '.join(command)} does not run: {detail}")
        raise PythonNotUsable(
            f"{' '.join(command)} cannot create environments: {detail}",
            "install Python's venv support (on Debian/Ubuntu: the python3-venv package)",
        )
    try:
        report = json.loads(completed.stdout.strip().splitlines()[-1])
        install = PythonInstall(
            Path(report["executable"]),
            tuple(report["version"]),
            architecture_name(str(report.get("machine", ""))),
            int(report.get("bits", 64)),
        )
    except (IndexError, ValueError, KeyError, TypeError) as error:
        raise PythonNotUsable(
            f"{' '.join(command)} did not answer as a Python does ({error})",
            "pick the python executable itself",
        ) from error
    if install.version[:2] < MIN_VERSION:
        raise PythonNotUsable(
            f"{install.label} is too old: the backend needs Python 3.10 or newer",
            "install Python 3.11 or newer from python.org",
        )
    return install


def candidate_commands(machine: Machine) -> list[list[str]]:
    """Commands that may start a Python: PATH, the py launcher on Windows, usual folders."""
    found = _on_path(PYTHON_NAMES)
    commands = [[path] for path in found if not is_developer_tools_stub(Path(path), machine)]
    if machine.system == "Windows":
        launcher = shutil.which("py")
        if launcher:
            commands += [[launcher, f"-3.{minor}"] for minor in (13, 12, 11, 10)]
    locations = _common_locations(machine.system, Path.home())
    commands += [[str(path)] for path in locations if not is_developer_tools_stub(path, machine)]
    return commands


def is_developer_tools_stub(path: Path, machine: Machine) -> bool:
    """On a Mac without Xcode's Command Line Tools, /usr/bin/python3 is no Python: running it
    opens a dialog offering to install them. Such a path is never probed."""
    return (
        machine.system == "Darwin"
        and not machine.developer_tools
        and path.parent == MACOS_STUB_FOLDER
        and path.name.startswith("python")
    )


def _on_path(names: Iterable[str]) -> list[str]:
    return [found for found in (shutil.which(name) for name in names) if found]


def _common_locations(system: str, home: Path) -> list[Path]:
    if system == "Windows":
        roots = [Path(os.environ.get("LOCALAPPDATA", home / "AppData/Local")) / "Programs/Python"]
        roots += [Path(os.environ.get("PROGRAMFILES", "C:/Program Files"))]
        patterns = [(root, "Python3*/python.exe") for root in roots]
    else:
        patterns = [
            (Path("/opt/homebrew/bin"), "python3.1*"),
            (Path("/usr/local/bin"), "python3.1*"),
            (Path("/usr/bin"), "python3.1*"),
            (Path("/Library/Frameworks/Python.framework/Versions"), "3.1*/bin/python3"),
            (home / ".pyenv/versions", "3.1*/bin/python3"),
        ]
    return [path for root, pattern in patterns for path in sorted(root.glob(pattern))]
