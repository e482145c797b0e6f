"""Past generations, read from the job folders: what made each (image, seed, parameters), when
it finished, its preview; and the overrides that run one again."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..job_folder import JobFolderError, read_job_folder
from ..props import GENERATION_PARAMETERS

MAX_ENTRIES = 50


@dataclass(frozen=True)
class HistoryEntry:
    folder: Path
    image: str
    seed: int | None
    params: dict[str, Any]
    finished: float
    """When result.json was written (seconds since the epoch)."""
    part_count: int

    @property
    def preview(self) -> Path | None:
        path = self.folder / "preview.png"
        return path if path.is_file() else None

    @property
    def title(self) -> str:
        seed = "?" if self.seed is None else self.seed
        return f"{Path(self.image).name or self.folder.name} · seed {seed}"

    @property
    def details(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.finished))
        steps, grid = self.params.get("steps", "?"), self.params.get("grid_res", "?")
        return f"{when} · {steps} steps · grid {grid} · {self.part_count} parts"

    def rerun_overrides(self, new_seed: bool) -> dict[str, Any]:
        """start_generation's overrides for the same image and settings, with the same seed or
        a new one."""
        given = {n: self.params[n] for n in GENERATION_PARAMETERS if n in self.params}
        given.update(image_path=self.image, randomize_seed=new_seed)
        if not new_seed and self.seed is not None:
            given["seed"] = self.seed
        return given


def history_entry(folder: Path) -> HistoryEntry:
    """The finished job folder `folder`. Raises JobFolderError, OSError."""
    job = read_job_folder(folder)
    params, parts = job.record.get("params"), job.record.get("parts")
    return HistoryEntry(
        folder=folder,
        image=str(job.record.get("image", "")),
        seed=job.seed,
        params=params if isinstance(params, dict) else {},
        finished=(folder / "result.json").stat().st_mtime,
        part_count=len(parts) if isinstance(parts, list) else 0,
    )


def past_generations(jobs: Path, limit: int = MAX_ENTRIES) -> list[HistoryEntry]:
    """The finished job folders in `jobs`, newest first; folders that are not (yet) job folders
    are left out."""
    if not jobs.is_dir():
        return []
    entries = []
    for folder in jobs.iterdir():
        try:
            entries.append(history_entry(folder))
        except (JobFolderError, OSError):
            continue  # a job still running, failed or removed: nothing to show
    entries.sort(key=lambda e: e.finished, reverse=True)
    return entries[:limit]


class HistoryCache:
    """past_generations(), read again when the jobs folder changed or the last read is older
    than MAX_AGE seconds (the panel redraws often; a job's result.json, written inside its
    folder, does not change the jobs folder)."""

    MAX_AGE = 2.0

    def __init__(self) -> None:
        self._key: tuple[str, int] | None = None
        self._read_at = -self.MAX_AGE
        self._entries: list[HistoryEntry] = []

    def entries(self, jobs: Path) -> list[HistoryEntry]:
        try:
            key = (str(jobs), jobs.stat().st_mtime_ns)
        except OSError:
            return []
        now = time.monotonic()
        if key != self._key or now - self._read_at > self.MAX_AGE:
            self._key, self._read_at, self._entries = key, now, past_generations(jobs)
        return self._entries

    def forget(self) -> None:
        self._key = None
