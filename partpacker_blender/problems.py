"""Problems people can act on: a message and what to do about it, reported in plain sentences.
Plain Python: the client package uses it too."""

from __future__ import annotations

from typing import Any


class Problem(Exception):
    """Base of the add-on's own errors: `message` says what is wrong, `hint` what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def sentence(text: str) -> str:
    """Messages are lower-case clauses (as the backend writes them); the UI shows sentences."""
    return text[:1].upper() + text[1:]


def described(message: str, hint: str = "") -> str:
    """A message and what to do about it, as sentences."""
    return f"{sentence(message)}. {sentence(hint)}" if hint else sentence(message)


def report_problem(operator: Any, message: str, hint: str = "") -> set[str]:
    """An operator's error report and its return value."""
    operator.report({"ERROR"}, described(message, hint))
    return {"CANCELLED"}
