"""Where a new result goes so that it is seen: at the spot asked for, or beside whatever already
occupies it (the default cube sits at the 3D cursor of a new file). Plain Python.

Boxes are axis-aligned, as ((min x, min y, min z), (max x, max y, max z)) in world space.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

Vector = tuple[float, float, float]
Box = tuple[Vector, Vector]

GAP_FRACTION = 0.1
"""Space left between a result moved aside and what it was moved away from, per size."""


def box_around(centre: Sequence[float], half: float) -> Box:
    low = tuple(c - half for c in centre)
    high = tuple(c + half for c in centre)
    return low, high  # type: ignore[return-value]


def overlaps(a: Box, b: Box) -> bool:
    return all(a[0][i] < b[1][i] and b[0][i] < a[1][i] for i in range(3))


def free_spot(centre: Sequence[float], half: float, occupied: Iterable[Box]) -> Vector:
    """`centre`, or the nearest spot along +X where a cube of `half` extent overlaps none of
    `occupied`."""
    boxes = list(occupied)
    x, y, z = (float(c) for c in centre)
    for _ in range(len(boxes) + 1):
        mine = box_around((x, y, z), half)
        in_the_way = [box for box in boxes if overlaps(mine, box)]
        if not in_the_way:
            break
        x = max(box[1][0] for box in in_the_way) + half * (1 + 2 * GAP_FRACTION)
    return x, y, z
