"""What the local worker is started with: `python -m backend serve` and its options."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .backend import BackendUnavailable


@dataclass(frozen=True)
class WorkerSettings:
    python: Path | None
    """None when no backend Python is configured: the backend is not set up."""
    backend_root: Path
    """The folder that contains the `backend` package: the worker's cwd and PYTHONPATH."""
    weights_dir: Path | None = None
    cache_dir: Path | None = None
    device: str = "auto"
    low_memory: bool = False
    weights_cache: Path | None = None
    """Folder for the backend's converted copy of the weights (None: no cache)."""
    env: dict[str, str] = field(default_factory=dict)
    hang_timeout: float = 600.0
    """Seconds without any event while a job runs before the worker counts as hung."""
    cancel_grace: float = 10.0
    """Seconds a cancelled job has to end before the worker is stopped (it is stuck)."""
    startup_timeout: float = 120.0
    stop_timeout: float = 3.0
    """Seconds a stopping worker gets after end of input, then again after SIGTERM."""
    idle_timeout: float | None = None
    """Seconds without a job before the worker is stopped (None: keep it loaded)."""

    def launch_key(self) -> tuple:
        """What a running worker was started with: a change needs a new worker."""
        return (self.command(), self.backend_root, sorted(self.env.items()))

    def command(self) -> list[str]:
        command = [str(self.python), "-u", "-m", "backend", "serve", "--device", self.device]
        if self.weights_dir is not None:
            command += ["--weights-dir", str(self.weights_dir)]
        elif self.cache_dir is not None:
            command += ["--repo-cache", str(self.cache_dir)]
        if self.low_memory:
            command.append("--low-memory")
        if self.weights_cache is not None:
            command += ["--weights-cache", str(self.weights_cache)]
        return command


def check_backend_files(settings: WorkerSettings) -> None:
    """Raise BackendUnavailable unless the backend Python and the backend package exist."""
    if settings.python is None:
        raise BackendUnavailable(
            "the backend is not set up", "set the backend's Python in the add-on preferences"
        )
    if not settings.python.is_file():
        raise BackendUnavailable(
            f"the backend Python {settings.python} does not exist",
            "set the backend's Python in the add-on preferences",
        )
    if not (settings.backend_root / "backend" / "__main__.py").is_file():
        raise BackendUnavailable(
            f"no backend package in {settings.backend_root}",
            "reinstall the extension: its backend folder is missing",
        )
