"""The server's one folder: Gradio's uploads and cached files at its top level (it is Gradio's
GRADIO_TEMP_DIR), our job folders in `jobs/`. Entries older than the keep time go first, then the
oldest ones while the folder is over its disk budget; the folders of running jobs stay."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG

from ..job_folder import PARTIAL, hidden_name

log = logging.getLogger(__name__)

JOBS = "jobs"
LONGEST_SWEEP_INTERVAL = 300.0


@dataclass(frozen=True)
class Entry:
    path: Path
    modified: float
    """The newest modification time inside the entry."""
    size: int


class WorkFolder:
    def __init__(self, root: Path, keep_seconds: float, budget_bytes: int) -> None:
        self.root = Path(root).resolve()
        self.jobs = self.root / JOBS
        self.jobs.mkdir(parents=True, exist_ok=True)
        self.keep_seconds = keep_seconds
        self.budget_bytes = budget_bytes
        self._running: set[Path] = set()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def job(self, kind: str) -> Iterator[Path]:
        """A new folder of its own for one job, kept while the job runs."""
        self.sweep()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        folder = self.jobs / f"{stamp}-{kind}-{secrets.token_hex(6)}"
        folder.mkdir()
        with self._lock:
            self._running.add(folder)
        try:
            yield folder
        finally:
            with self._lock:
                self._running.discard(folder)

    def sweep(self, now: float | None = None) -> list[Path]:
        """Remove what is past the keep time, then the oldest while over the budget."""
        now = time.time() if now is None else now
        with self._lock:
            entries = [entry for entry in self.entries() if not self._in_use(entry.path)]
        entries.sort(key=lambda entry: entry.modified)
        total = sum(entry.size for entry in entries)
        removed = []
        for entry in entries:
            if now - entry.modified <= self.keep_seconds and total <= self.budget_bytes:
                break
            remove(entry.path)
            total -= entry.size
            removed.append(entry.path)
        if removed:
            log.info("removed %d old uploads and results from %s", len(removed), self.root)
        return removed

    def _in_use(self, path: Path) -> bool:
        """A running job's folder, or the hidden folder its files are written in first
        (job_folder.py)."""
        return path in self._running or any(
            path.name.startswith(hidden_name(folder, PARTIAL)) for folder in self._running
        )

    def entries(self) -> list[Entry]:
        """Each upload or cached file (a folder at the top) and each job folder."""
        tops = [path for path in self.root.iterdir() if path != self.jobs]
        entries = []
        for path in [*tops, *self.jobs.iterdir()]:
            with contextlib.suppress(FileNotFoundError):  # removed while being measured
                entries.append(measure(path))
        return entries

    def sweep_every(self, stop: threading.Event) -> threading.Thread:
        """Sweep in the background (so that an idle server cleans up too) until `stop` is set."""
        interval = min(self.keep_seconds / 4, LONGEST_SWEEP_INTERVAL)

        def loop() -> None:
            while not stop.wait(interval):
                self.sweep()

        thread = threading.Thread(target=loop, name="sweep", daemon=True)
        thread.start()
        return thread


def measure(path: Path) -> Entry:
    """The entry's newest modification time and the bytes of its files."""
    stats = [path.lstat()]
    if path.is_dir() and not path.is_symlink():
        for folder, _, names in os.walk(path):
            stats.extend(Path(folder, name).lstat() for name in names)
    size = sum(stat.st_size for stat in stats if S_ISREG(stat.st_mode))
    return Entry(path, max(stat.st_mtime for stat in stats), size)


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
