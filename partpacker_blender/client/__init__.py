"""Talking to the backend worker process. Plain Python: nothing here imports bpy."""

from .backend import (
    BackendClient,
    BackendUnavailable,
    BusyError,
    Job,
    JobOutcome,
    WorkerSettings,
    WorkerState,
    check_backend_files,
)
from .protocol import PROTOCOL_VERSION, Hello, JobError, Progress

__all__ = [
    "PROTOCOL_VERSION",
    "BackendClient",
    "BackendUnavailable",
    "BusyError",
    "Hello",
    "Job",
    "JobError",
    "JobOutcome",
    "Progress",
    "WorkerSettings",
    "WorkerState",
    "check_backend_files",
]
