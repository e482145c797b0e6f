"""The server's folder keeps uploads and results for a while and within a disk budget."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from backend.errors import BadInputError
from backend.job_folder import JobFolder
from backend.server.options import ServerOptions
from backend.server.storage import WorkFolder

HOUR = 3600.0


def entry(root: Path, name: str, size: int, age: float, now: float) -> Path:
    """A folder holding one file of `size` bytes, last written `age` seconds before `now`."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "file.bin").write_bytes(bytes(size))
    for path in (folder / "file.bin", folder):
        os.utime(path, (now - age, now - age))
    return folder


def test_entries_past_the_keep_time_go_and_the_rest_stay(tmp_path: Path) -> None:
    work = WorkFolder(tmp_path, keep_seconds=HOUR, budget_bytes=1 << 30)
    now = time.time()
    old_upload = entry(tmp_path, "a" * 64, 10, 2 * HOUR, now)
    old_job = entry(work.jobs, "old-generate", 10, 2 * HOUR, now)
    new_upload = entry(tmp_path, "b" * 64, 10, 60, now)
    new_job = entry(work.jobs, "new-generate", 10, 60, now)
    assert sorted(work.sweep(now)) == sorted([old_upload, old_job])
    assert new_upload.exists() and new_job.exists() and work.jobs.exists()


def test_over_the_budget_the_oldest_go_first(tmp_path: Path) -> None:
    work = WorkFolder(tmp_path, keep_seconds=HOUR, budget_bytes=25_000)
    now = time.time()
    ages = {"first": 300, "second": 200, "third": 100}
    folders = {name: entry(work.jobs, name, 10_000, age, now) for name, age in ages.items()}
    assert work.sweep(now) == [folders["first"]]
    assert folders["second"].exists() and folders["third"].exists()


def test_a_running_jobs_folder_is_kept_and_every_job_gets_its_own(tmp_path: Path) -> None:
    work = WorkFolder(tmp_path, keep_seconds=1.0, budget_bytes=1)
    with work.job("generate") as first, work.job("generate") as second:
        building = JobFolder(first)
        building.file("parts.glb").write_bytes(bytes(100))
        assert first != second and first.parent == second.parent == work.jobs
        assert work.sweep(time.time() + HOUR) == []
        building.commit()
        assert (first / "parts.glb").exists()
    assert sorted(work.sweep(time.time() + HOUR)) == sorted([first, second])


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("port", 70000, "--port must be between 0 and 65535"),
        ("max_upload_mb", 0, "--max-upload-mb must be positive"),
        ("keep_minutes", -1, "must be positive"),
        ("grid_res_cap", 8, "--grid-res-cap must be between 16 and 512"),
        ("token", "  ", "--token is empty"),
    ],
)
def test_server_options_that_cannot_work_are_refused(field: str, value: object, words: str) -> None:
    with pytest.raises(BadInputError, match=words):
        ServerOptions(**{field: value})
