"""Why no job can start yet, for the backend the preferences choose: this computer's worker
(not set up, or its files gone) or a remote one (an address that cannot work, online access
off). Quick: the operators' poll and the panel ask at every redraw."""

from __future__ import annotations

import bpy

from .client import BackendUnavailable, check_backend_files
from .remote_preferences import remote_settings, uses_remote
from .settings import worker_settings


def backend_problem(context: bpy.types.Context | None = None) -> BackendUnavailable | None:
    """The reason no job can start, else None."""
    try:
        if uses_remote(context):
            remote_settings(context)
        else:
            check_backend_files(worker_settings(context))
    except BackendUnavailable as problem:
        return problem
    return None
