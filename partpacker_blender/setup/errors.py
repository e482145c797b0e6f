"""Problems the person setting up the add-on can act on: a message and what to do about it."""

from __future__ import annotations


class SetupError(RuntimeError):
    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
