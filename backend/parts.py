"""A part (one connected piece of one volume), the demo's palette, and the stable part order."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

Color = tuple[int, int, int, int]
"""sRGB bytes, RGBA."""


def _rgba(hex_code: str) -> Color:
    red, green, blue = (int(hex_code[i : i + 2], 16) for i in (1, 3, 5))
    return (red, green, blue, 255)


PALETTE: tuple[Color, ...] = tuple(
    _rgba(code)
    for code in (
        # matplotlib Set3 (ColorBrewer), 12 colours
        "#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462",
        "#b3de69", "#fccde5", "#d9d9d9", "#bc80bd", "#ccebc5", "#ffed6f",
        # Set2, 8 colours
        "#66c2a5", "#fc8d62", "#8da0cb", "#e78ac3", "#a6d854", "#ffd92f", "#e5c494", "#b3b3b3",
        # Set1, 9 colours
        "#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#ffff33", "#a65628", "#f781bf",
        "#999999",
    )
)  # fmt: skip
"""The demo's 29 part colours in order: Set3, then Set2, then Set1."""

UNASSIGNED_COLOR: Color = (204, 204, 204, 255)
"""The colour of a part before `assemble_parts` gives it its palette colour."""


@dataclass
class Part:
    """One part. `vertices` float32 [V, 3] are in the model frame (the [-1, 1] grid frame, as
    the grid axes); `faces` int32 [F, 3] index this part's own vertices, counter-clockwise seen
    from outside."""

    name: str
    volume: int
    vertices: np.ndarray
    faces: np.ndarray
    color: Color = UNASSIGNED_COLOR

    def __post_init__(self) -> None:
        self.vertices = np.ascontiguousarray(self.vertices, dtype=np.float32)
        self.faces = np.ascontiguousarray(self.faces, dtype=np.int32)
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3:
            raise ValueError(f"part vertices must be [V, 3], got {self.vertices.shape}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise ValueError(f"part faces must be [F, 3], got {self.faces.shape}")
        if self.faces.size and (self.faces.min() < 0 or self.faces.max() >= len(self.vertices)):
            raise ValueError(f"part {self.name!r} has face indices outside its vertices")
        self.color = as_color(self.color)


def as_color(channels: Iterable[int]) -> Color:
    """Four sRGB bytes as plain ints (from a numpy row, a JSON list, ...)."""
    red, green, blue, alpha = (int(channel) for channel in channels)
    return (red, green, blue, alpha)


def assemble_parts(parts_per_volume: list[list[Part]]) -> list[Part]:
    """All parts in the stable order (volume 0 then 1, each largest first), named `part_000`,
    `part_001`, ... and coloured from the palette, cycling, in that order."""
    ordered = [
        part
        for parts in parts_per_volume
        for part in sorted(parts, key=lambda part: len(part.faces), reverse=True)
    ]
    return [
        dataclasses.replace(part, name=f"part_{index:03d}", color=PALETTE[index % len(PALETTE)])
        for index, part in enumerate(ordered)
    ]
