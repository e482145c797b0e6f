"""`batch` through the fleet: a folder of images on the session's two replicas (conftest.py),
from this process and from `python -m backend batch --fleet ADDRESS` in another process, which
joins the running cluster as a second machine would. Marked slow (the shared cluster)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import ray

from backend.fleet.batch import SUMMARY_NAME, run_batch
from backend.fleet.runner import FleetRunner
from backend.params import GenerationParams

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
ROBOT = REPO / "examples" / "robot.png"
QUICK = GenerationParams(steps=3, grid_res=32, seed=7, randomize_seed=False)
TIMEOUT_S = 240.0


def batch_folder(root: Path) -> Path:
    folder = root / "images"
    folder.mkdir()
    for name in ("one", "two", "three"):
        shutil.copy(ROBOT, folder / f"{name}.png")
    (folder / "broken.png").write_bytes(b"not a PNG at all")
    return folder


def test_a_batch_through_the_fleet_runs_on_both_replicas(
    runner: FleetRunner, tmp_path: Path
) -> None:
    folder, output = batch_folder(tmp_path), tmp_path / "out"
    images = sorted(folder.iterdir())
    run_batch(images, output, runner, QUICK, jobs=runner.capacity)
    summary = json.loads((output / SUMMARY_NAME).read_text())
    assert (summary["done"], summary["failed"]) == (3, 1)
    done = [entry for entry in summary["images"] if entry["status"] == "done"]
    assert len({entry["replica"]["replica_id"] for entry in done}) == 2
    broken = next(entry for entry in summary["images"] if entry["status"] == "failed")
    assert broken["error"]["code"] == "bad_input" and broken["attempts"] == 2


def test_the_batch_command_of_another_process_joins_the_running_fleet(
    runner: FleetRunner, tiny_flags: list[str], tmp_path: Path
) -> None:
    folder, output = batch_folder(tmp_path), tmp_path / "out"
    address = ray.get_runtime_context().gcs_address
    quick = ["--steps", "3", "--grid-res", "32", "--seed", "7"]
    command = ["batch", folder, "-o", output, "--fleet", address, *tiny_flags, *quick]
    completed = subprocess.run(
        [sys.executable, "-m", "backend", *map(str, command)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert completed.returncode == 1, completed.stderr
    assert "3 done, 0 done before and skipped, 1 failed" in completed.stdout
    assert "already running on this cluster" in completed.stderr
    summary = json.loads((output / SUMMARY_NAME).read_text())
    done = [entry for entry in summary["images"] if entry["status"] == "done"]
    assert all(entry["replica"]["replica_id"] for entry in done)
