"""History: past generations read from job folders (synthetic ones, and one the real backend
wrote), imported again and run again with the same or a new seed."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import bpy
import pytest
from addon_setup import REPO_ROOT
from helpers import parts_arrays, sample_parts, write_npz

ROBOT = REPO_ROOT / "examples" / "robot.png"
QUICK = {"grid_res": 16, "steps": 1}


def write_job_folder(folder, image: str, seed: int, finished: float) -> None:
    folder.mkdir(parents=True)
    write_npz(folder / "parts.npz", parts_arrays(*sample_parts()))
    shutil.copy(ROBOT, folder / "preview.png")
    record = {
        "image": image,
        "seed": seed,
        "params": {"steps": 30, "grid_res": 256, "seed": seed, "randomize_seed": False},
        "parts": [{"name": f"part_{i:03d}"} for i in range(3)],
    }
    (folder / "result.json").write_text(json.dumps(record))
    os.utime(folder / "result.json", (finished, finished))


@pytest.fixture
def jobs(prefs, tmp_path):
    folder = tmp_path / "jobs"
    prefs.output_dir = str(folder)
    yield folder
    prefs.output_dir = ""


def test_past_generations_are_listed_newest_first(addon, jobs):
    write_job_folder(jobs / "old", "/photos/chair.png", 7, finished=1_700_000_000)
    write_job_folder(jobs / "new", "/photos/robot.png", 9, finished=1_800_000_000)
    (jobs / "running").mkdir()  # a job still running has no parts yet
    (jobs / "notes.txt").write_text("not a job")

    entries = addon.parts.history.past_generations(jobs)

    assert [e.folder.name for e in entries] == ["new", "old"]
    newest = entries[0]
    assert newest.title == "robot.png · seed 9"
    assert newest.seed == 9 and newest.params["grid_res"] == 256
    assert newest.preview == jobs / "new" / "preview.png"
    assert "30 steps · grid 256 · 3 parts" in newest.details
    assert newest.rerun_overrides(new_seed=False) == {
        "steps": 30,
        "grid_res": 256,
        "seed": 9,
        "randomize_seed": False,
        "image_path": "/photos/robot.png",
    }
    assert newest.rerun_overrides(new_seed=True)["randomize_seed"] is True


def test_no_jobs_folder_is_an_empty_history(addon, tmp_path):
    assert addon.parts.history.past_generations(tmp_path / "missing") == []


def test_import_again_brings_the_parts_back(addon, jobs):
    write_job_folder(jobs / "one", "/photos/robot.png", 9, finished=1_800_000_000)
    assert bpy.ops.partpacker.history_import(folder=str(jobs / "one")) == {"FINISHED"}
    root = bpy.data.objects["robot_9"]
    assert len(addon.parts.result_parts.parts_of(root)) == 3


def test_run_again_with_the_same_seed_and_with_a_new_one(addon, backend, jobs):
    parts = addon.api.generate(ROBOT, seed=21, **QUICK)
    first = parts[0].parent["partpacker"].to_dict()
    (entry,) = addon.parts.history.past_generations(jobs)
    # the job reads its own copy of the image, kept beside the job folders
    assert entry.seed == 21 and Path(entry.image).read_bytes() == ROBOT.read_bytes()
    assert Path(entry.image).parent.name == entry.folder.name

    assert bpy.ops.partpacker.history_rerun(folder=str(entry.folder)) == {"FINISHED"}
    assert bpy.ops.partpacker.history_rerun(folder=str(entry.folder), new_seed=True) == {"FINISHED"}
    entries = addon.parts.history.past_generations(jobs)
    assert len(entries) == 3
    same, new = entries[1], entries[0]
    assert same.seed == 21 and same.params == first["params"]
    assert new.seed != 21
    assert {k: v for k, v in new.params.items() if k not in ("seed", "randomize_seed")} == {
        k: v for k, v in first["params"].items() if k not in ("seed", "randomize_seed")
    }


def test_run_again_of_a_removed_folder_says_so(addon, jobs, tmp_path):
    with pytest.raises(RuntimeError, match="cannot be run again"):
        bpy.ops.partpacker.history_rerun(folder=str(tmp_path / "gone"))
