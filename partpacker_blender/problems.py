"""Problems people can act on: a message and what to do about it, reported in plain sentences.
Plain Python: the client package uses it too."""

from __future__ import annotations

import re
from typing import Any

FILE_NAME = re.compile(r"[\w-]+\.[A-Za-z0-9]{1,5}\b")
"""A word like notes.txt or parts.npz, which keeps its case at the start of a sentence."""


class Problem(Exception):
    """Base of the add-on's own errors: `message` says what is wrong, `hint` what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def sentence(text: str) -> str:
    """Messages are lower-case clauses (as the backend writes them); the UI shows sentences.
    A file name or a path at the start stays as it is spelled."""
    if FILE_NAME.match(text) or text[:1] in ("/", "\\", "~"):
        return text
    return text[:1].upper() + text[1:]


def described(message: str, hint: str = "") -> str:
    """A message and what to do about it, as sentences."""
    return f"{sentence(message)}. {sentence(hint)}" if hint else sentence(message)


def report_problem(operator: Any, message: str, hint: str = "") -> set[str]:
    """An operator's error report and its return value."""
    operator.report({"ERROR"}, described(message, hint))
    return {"CANCELLED"}
