"""Reading model configurations written with the official field names."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def config_from_dict(cls: type[T], values: dict[str, Any]) -> T:
    """Build the dataclass `cls` from `values`, keeping the fields it knows.

    Official configuration dicts also carry documentation-only and training-only entries
    (dropout rates, FPS cut-offs, KL weights...) that inference has no use for.
    """
    known = {field.name for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{key: value for key, value in values.items() if key in known})
