#!/usr/bin/env python3
"""Developer entry point: set up both environments, then run the demo or the whole test suite.

    python3 dev.py demo   # build the extension and the backend env; generate from the example image
    python3 dev.py test   # build both envs; run the backend and the Blender test suites, and the
                          # GUI suite where a real Blender is set up (tools/real-blender)

Two environments, as on a user's machine: `.venv/backend` (torch, numpy 2, mesh libraries, the
web server's Gradio) runs the backend process; `.venv/blender` (the `bpy` module from PyPI,
numpy 1.26) stands in for Blender.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENVS = ROOT / ".venv"
BACKEND_ENV = VENVS / "backend"
BLENDER_ENV = VENVS / "blender"
TORCH_PIN = "torch==2.13.0"
BPY_PIN = "bpy==4.5.15"
EXAMPLE_IMAGE = ROOT / "examples" / "robot.png"
REAL_BLENDER = ROOT / "tools" / "real-blender"
REQUIRE_GUI = "PARTPACKER_REQUIRE_GUI"
"""Set to 1 (as .ci/run does) and a GUI suite that cannot run fails the test command."""
LARGE_GRIDS = "PARTPACKER_LARGE_GRIDS"
"""Set to 1 to include the `large_grid` tests (the tiny VAE decoded at 384-512, and at 129 through
the worker): minutes more on 2 cores than the CI's 30 minutes leave."""


def python_of(env: Path) -> Path:
    return env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(*cmd: object, **kwargs) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kwargs)


def ensure_env(env: Path, *requirements: str) -> Path:
    """Create `env` once, then (re)install `requirements`; pip skips what is already satisfied."""
    if not python_of(env).exists():
        venv.create(env, with_pip=True)
    python = python_of(env)
    run(python, "-m", "pip", "install", "--quiet", *requirements)
    return python


def backend_env() -> Path:
    # torch first and pinned: any later range it satisfies installs nothing more.
    ensure_env(BACKEND_ENV, TORCH_PIN)
    return ensure_env(BACKEND_ENV, "-e", f"{ROOT}[test,bench,dev,server,fleet]")


def blender_env() -> Path:
    return ensure_env(BLENDER_ENV, BPY_PIN, "pytest>=8")


def real_blender_missing() -> str | None:
    """Why the GUI suite cannot run here, or None when a real Blender is ready for it."""
    try:
        check = subprocess.run(
            [str(REAL_BLENDER), "check"], capture_output=True, text=True, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"tools/real-blender check did not run: {error}"
    return None if check.returncode == 0 else (check.stdout + check.stderr).strip()


def large_grids() -> list[str]:
    return [] if os.environ.get(LARGE_GRIDS) == "1" else ["-m", "not large_grid"]


def test(pytest_args: list[str]) -> int:
    backend_python = backend_env()
    blender_python = blender_env()
    env = {**os.environ, "PARTPACKER_BACKEND_PYTHON": str(backend_python)}
    suites = {
        "backend": [backend_python, "-m", "pytest", "tests/backend", *large_grids(), *pytest_args],
        "blender": [blender_python, "-m", "pytest", "tests/blender", *pytest_args],
    }
    gui_missing = real_blender_missing()
    if gui_missing is None:
        suites["gui"] = [blender_python, "-m", "pytest", "tests/gui", *pytest_args]
    codes = {
        name: subprocess.run([str(c) for c in suite], cwd=ROOT, env=env).returncode
        for name, suite in suites.items()
    }
    summary = ", ".join(f"{name} {code}" for name, code in codes.items())
    if gui_missing is not None:
        summary += ", gui NOT RUN"
        print(
            f"\nThe GUI suite (tests/gui) did NOT run: {gui_missing}\n"
            "It needs a real Blender: `tools/real-blender setup` as root (see README).",
            flush=True,
        )
    print(f"suites exit codes: {summary}", flush=True)
    worst = max(codes.values())
    if gui_missing is not None and os.environ.get(REQUIRE_GUI) == "1":
        print(f"{REQUIRE_GUI}=1: a test run without the GUI suite fails.", flush=True)
        return worst or 1
    return worst


def demo(args: argparse.Namespace) -> int:
    backend_python = backend_env()
    blender_python = blender_env()
    run(blender_python, ROOT / "build.py")
    weights = ["--weights-dir", args.weights_dir] if args.weights_dir else []
    doctor = subprocess.run([str(backend_python), "-m", "backend", "doctor", *weights], cwd=ROOT)
    if doctor.returncode != 0:
        print(
            "\nThe model weights are not here yet. Fetch them (about 11 GB) with\n"
            f"  {backend_python} -m backend download\n"
            "or point --weights-dir at a folder holding flow.pt, vae.pt and model.safetensors,\n"
            "then run `python3 dev.py demo` again.",
            flush=True,
        )
        return doctor.returncode
    output = ROOT / "outputs" / "demo"
    run(
        backend_python, "-m", "backend", "generate", EXAMPLE_IMAGE, "-o", output, *weights, cwd=ROOT
    )
    where = "PartPacker panel > Output > Import Job Folder"
    print(f"\nParts written to {output}; in Blender: {where}.", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo_parser = sub.add_parser(
        "demo", help="set up, build the extension, generate from the example"
    )
    demo_parser.add_argument(
        "--weights-dir", help="local folder with the weights (default: HF cache)"
    )
    test_parser = sub.add_parser("test", help="set up both environments and run every test")
    test_parser.add_argument("pytest_args", nargs=argparse.REMAINDER, help="passed on to pytest")
    args = parser.parse_args()
    if args.command == "test":
        return test(args.pytest_args)
    return demo(args)


if __name__ == "__main__":
    sys.exit(main())
