"""constraints.txt: the exact versions Set Up Backend installs are those this suite runs with, they
fall within pyproject.toml's ranges, and they name versions, not builds."""

from __future__ import annotations

import subprocess
from pathlib import Path

import tomllib
from addon_setup import REPO_ROOT
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

CONSTRAINTS = REPO_ROOT / "constraints.txt"


def pins() -> dict[str, str]:
    lines = [line for line in CONSTRAINTS.read_text().splitlines() if not line.startswith("#")]
    pairs = [line.split("==") for line in lines]
    assert all(len(pair) == 2 for pair in pairs), "one name==version per line"
    return {canonicalize_name(name): version for name, version in pairs}


def test_the_pins_are_what_this_suite_runs_with(backend_python: Path) -> None:
    """Rewritten from the backend environment now, the file does not change. After installing
    other versions there, run: .venv/backend/bin/python tools/backend_constraints.py"""
    tool = REPO_ROOT / "tools" / "backend_constraints.py"
    completed = subprocess.run(
        [str(backend_python), str(tool), "-"], capture_output=True, text=True, check=True
    )
    assert completed.stdout == CONSTRAINTS.read_text()
    versions = subprocess.run(
        [str(backend_python), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    installed = {
        canonicalize_name(name): Version(version).public
        for name, _, version in (line.partition("==") for line in versions)
        if version
    }
    assert {name: installed.get(name) for name in pins()} == pins()


def test_every_requirement_is_pinned_within_its_range() -> None:
    with (REPO_ROOT / "pyproject.toml").open("rb") as file:
        requirements = [Requirement(r) for r in tomllib.load(file)["project"]["dependencies"]]
    pinned = pins()
    for requirement in requirements:
        version = pinned.get(canonicalize_name(requirement.name))
        assert version is not None, f"{requirement.name} is not pinned"
        assert requirement.specifier.contains(version, prereleases=True), (requirement, version)


def test_pins_name_versions_not_builds() -> None:
    """PyTorch's CUDA, CPU and MPS builds differ in their local tag (+cu128, +cpu): a pin
    without one takes whichever build the chosen index has."""
    pinned = pins()
    assert "torch" in pinned and "pip" not in pinned
    assert all(Version(version).local is None for version in pinned.values()), pinned


def test_the_oldest_python_the_pins_need_is_stated(setup_modules) -> None:
    stated = setup_modules.environment.backend_constraints(REPO_ROOT)
    assert stated is not None
    header = [line for line in CONSTRAINTS.read_text().splitlines() if "requires-python" in line]
    assert header == [
        f"# requires-python: >={stated.requires_python[0]}.{stated.requires_python[1]}"
    ]
    assert (3, 10) <= stated.requires_python <= (3, 11), "the suite's Python is 3.11"
