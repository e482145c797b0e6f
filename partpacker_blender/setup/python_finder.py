"""Finding a Python >= 3.10 on this machine to build the backend's environment from. No bpy."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..child_process import NO_CONSOLE_WINDOW, other_python_environment
from ..problems import Problem

MIN_VERSION = (3, 10)
NEWEST_SUPPORTED = (3, 13)
"""The newest Python with PyTorch wheels when this was written: newer ones are picked last."""
PROBE_TIMEOUT = 20.0
PROBE = "print(json.dumps({'version': list(sys.version_info[:3]), 'executable': sys.executable}))"
# ensurepip is what `python -m venv` needs to put pip into the new environment; some Linux
# distributions ship it in a separate package (python3-venv).
VENV_MODULES = "venv, ensurepip"
PYTHON_NAMES = ("python3.13", "python3.12", "python3.11", "python3.10", "python3", "python")


class PythonNotUsable(Problem):
    """A Python that cannot build the backend's environment."""


@dataclass(frozen=True)
class PythonInstall:
    executable: Path
    version: tuple[int, int, int]

    @property
    def label(self) -> str:
        return f"Python {'.'.join(map(str, self.version))} ({self.executable})"


def find_pythons(system: str | None = None) -> list[PythonInstall]:
    """Every usable Python >= 3.10 found, newest first, each interpreter once."""
    found: dict[Path, PythonInstall] = {}
    for command in candidate_commands(system or platform.system()):
        try:
            install = probe_python(command)
        except PythonNotUsable:
            continue
        # python, python3 and python3.11 in one folder are usually one interpreter.
        found.setdefault(install.executable.resolve(), install)
    return sorted(found.values(), key=lambda install: install.version, reverse=True)


def choose_python(found: list[PythonInstall]) -> PythonInstall:
    if not found:
        raise PythonNotUsable(
            "no Python 3.10 or newer was found on this computer",
            "install Python 3.12 from python.org, or pick one: Set Up with Another Python",
        )
    supported = [p for p in found if p.version[:2] <= NEWEST_SUPPORTED]
    return (supported or found)[0]


def check_python(path: Path, for_venv: bool = True) -> PythonInstall:
    """The Python at `path` if it is new enough (and, `for_venv`, can build the environment);
    PythonNotUsable says why not."""
    if not path.is_file():
        raise PythonNotUsable(f"{path} does not exist", "pick the python executable itself")
    return probe_python([str(path)], for_venv)


def probe_python(command: Sequence[str], for_venv: bool = True) -> PythonInstall:
    modules = f"json, sys, {VENV_MODULES}" if for_venv else "json, sys"
    try:
        completed = subprocess.run(
            [*command, "-c", f"import {modules}; {PROBE}"],
            capture_output=True,
            text=True,
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
        install = PythonInstall(Path(report["executable"]), tuple(report["version"]))
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


def candidate_commands(system: str) -> list[list[str]]:
    """Commands that may start a Python: PATH, the py launcher on Windows, usual folders."""
    commands = [[found] for found in _on_path(PYTHON_NAMES)]
    if system == "Windows":
        launcher = shutil.which("py")
        if launcher:
            commands += [[launcher, f"-3.{minor}"] for minor in (13, 12, 11, 10)]
    commands += [[str(path)] for path in _common_locations(system, Path.home())]
    return commands


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
