"""Errors the backend reports to people: each has a stable code, a one-line message and a hint."""

from __future__ import annotations

import sys
from collections.abc import Callable

CancelCheck = Callable[[], bool]
"""Asked between steps of long work: True once the job should stop (the work raises Cancelled)."""
SETUP_HINT = (
    "set up the backend: in Blender, Set Up Backend in the add-on's preferences; in a checkout, "
    "pip install -e . with this Python"
)


class PartPackerError(Exception):
    """Base class of every error the user can act on. `code` is stable and machine-readable."""

    code = "internal"
    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class BadInputError(PartPackerError):
    """An image, a parameter or a request that cannot be used as given."""

    code = "bad_input"
    exit_code = 2


class WeightsError(PartPackerError):
    """Model weights that are missing, unreadable, or not the files they claim to be."""

    code = "weights"
    exit_code = 3


class DeviceOutOfMemoryError(PartPackerError):
    """The accelerator ran out of memory."""

    code = "out_of_memory"
    exit_code = 4


class OutputError(PartPackerError):
    """The output folder or file cannot be written."""

    code = "output"
    exit_code = 5


class SetupError(PartPackerError):
    """The Python running the backend lacks a package the backend needs."""

    code = "setup"
    exit_code = 6


class Cancelled(PartPackerError):
    """The job was cancelled on request. Not a failure."""

    code = "cancelled"
    exit_code = 130


def describe_bug(error: Exception, hint: str) -> PartPackerError:
    """An unexpected exception as an `internal` error the user can pass on; a package missing
    from this Python is no bug but a setup to do (SetupError)."""
    if (
        isinstance(error, ModuleNotFoundError)
        and error.name
        and not error.name.startswith("backend")
    ):
        return SetupError(
            f"this Python ({sys.executable}) lacks the backend's packages: "
            f"no module named {error.name!r}",
            SETUP_HINT,
        )
    return PartPackerError(f"internal error: {type(error).__name__}: {error}", hint)
