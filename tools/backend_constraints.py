"""Write constraints.txt: the exact versions of the backend's requirements and of everything they
pull in, as installed in the Python that runs this (the environment the test suite ran with).

    .venv/backend/bin/python tools/backend_constraints.py          # rewrites constraints.txt
    .venv/backend/bin/python tools/backend_constraints.py -        # prints it instead

build.py ships the file beside the generated requirements (worker/backend/constraints.txt) and
Set Up Backend installs with `pip install -c` it. PyTorch's build (CUDA, CPU or MPS wheels) is
chosen per machine, so versions are written without a build's local tag (2.13.0, not 2.13.0+cpu).
Needs `packaging` in that Python (the backend's requirements bring it).
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "constraints.txt"
LEFT_OUT = {"pip"}
"""Set Up Backend updates pip itself first (to a version that reports progress)."""
PYTHON_MINORS = range(8, 30)
PINS_NEED_MACOS = "14.0"
"""The oldest macOS the pinned versions have wheels for, which cannot be read from a Linux
environment. Measured for torch 2.13.0: `pip index versions torch --platform macosx_13_0_arm64
--python-version 3.11 --only-binary=:all:` finds 2.11.0 at most, with macosx_14_0_arm64 2.13.0
and newer; the other pins resolve for macosx_14_0_arm64 (`pip install --dry-run --platform
...`). Set Up Backend installs within pyproject.toml's ranges on older macOS."""


def top_level_requirements(root: Path = ROOT) -> list[Requirement]:
    with (root / "pyproject.toml").open("rb") as file:
        return [Requirement(line) for line in tomllib.load(file)["project"]["dependencies"]]


def installed_closure(requirements: list[Requirement]) -> dict[str, metadata.Distribution]:
    """Every installed distribution the requirements need, by canonical name, following each
    one's own requirements whose markers hold here (with the extras asked for)."""
    found: dict[str, metadata.Distribution] = {}
    pending = [(requirement, set(requirement.extras)) for requirement in requirements]
    asked: set[tuple[str, frozenset[str]]] = set()
    while pending:
        requirement, extras = pending.pop()
        name = canonicalize_name(requirement.name)
        if (name, frozenset(extras)) in asked:
            continue
        asked.add((name, frozenset(extras)))
        distribution = found.setdefault(name, metadata.distribution(requirement.name))
        for line in distribution.requires or []:
            needed = Requirement(line)
            if needed.marker is None or any(
                needed.marker.evaluate({"extra": extra}) for extra in {"", *extras}
            ):
                pending.append((needed, set(needed.extras)))
    return found


def lowest_python(distributions: list[metadata.Distribution]) -> str:
    """The oldest Python 3.x every pinned version declares it runs on (Requires-Python)."""
    ranges = [SpecifierSet(d.metadata.get("Requires-Python") or "") for d in distributions]
    minor = next(m for m in PYTHON_MINORS if all(f"3.{m}.0" in r for r in ranges))
    return f"3.{minor}"


def constraints_text(root: Path = ROOT) -> str:
    closure = installed_closure(top_level_requirements(root))
    pinned = {name: d for name, d in closure.items() if name not in LEFT_OUT}
    lines = [f"{name}=={Version(d.version).public}" for name, d in sorted(pinned.items())]
    python = ".".join(map(str, sys.version_info[:2]))
    header = [
        f"# The versions the test suite ran with (Python {python}, {sys.platform}): the backend's",
        "# requirements in pyproject.toml and everything they pull in. Set Up Backend installs",
        "# with `pip install -c` this file. Written by tools/backend_constraints.py.",
        f"# requires-python: >={lowest_python(list(pinned.values()))}",
        f"# requires-macos: >={PINS_NEED_MACOS}",
    ]
    return "\n".join([*header, *lines]) + "\n"


def main(argv: list[str]) -> int:
    text = constraints_text()
    if argv[1:] == ["-"]:
        sys.stdout.write(text)
    else:
        OUTPUT.write_text(text, "utf-8")
        print(f"Wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
