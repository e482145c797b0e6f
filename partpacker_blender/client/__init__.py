"""Talking to a backend: the interface the add-on uses (backend.py), the local worker that
implements it (worker.py, worker_settings.py) and the worker protocol's messages (protocol.py);
a remote server or Hugging Face Space (remote.py, remote_job.py, remote_settings.py over
gradio_http.py), and the switch between the two that the preferences drive (switch.py).
Plain Python: nothing here imports bpy."""

from .backend import Backend, BackendUnavailable, BusyError, Job, JobOutcome, WorkerState
from .protocol import PROTOCOL_VERSION, Hello, JobError, Progress
from .worker import WorkerClient
from .worker_settings import WorkerSettings, check_backend_files

__all__ = [
    "PROTOCOL_VERSION",
    "Backend",
    "BackendUnavailable",
    "BusyError",
    "Hello",
    "Job",
    "JobError",
    "JobOutcome",
    "Progress",
    "WorkerClient",
    "WorkerSettings",
    "WorkerState",
    "check_backend_files",
]
