"""Every decode strategy at odd and even grid resolutions, against the official coarse-to-fine
decoder (`hierarchical`, which test_decoding.py checks against the reference fixtures).

The levels halve with integer division, so most resolutions do not double from level to level
(385 → 96, 192, 385; 258 → 64, 129, 258; 511 → 127, 255, 511): the cases a decoder that copies
coarse values into even fine indices gets wrong.
"""

from __future__ import annotations

import functools
import itertools

import pytest
import torch
from decode_fields import (
    bits,
    blobs_and_plates,
    corners_of,
    crossing_cells,
    surface_cells,
    tiny_vae_field,
    without_padding,
)
from reference import analytic_occupancy

from backend.decoding import STRATEGIES, DecodedGrid, decode_field

FIELDS = {
    "analytic": lambda: analytic_occupancy,
    "blobs": lambda: blobs_and_plates,
    "vae": lambda: tiny_vae_field(0),
    "vae-other": lambda: tiny_vae_field(1),
}
CHUNK = 1 << 16
slow = pytest.mark.slow
CASES = [
    ("analytic", 258),
    ("analytic", 385),
    ("blobs", 129),
    ("vae", 129),
    ("vae-other", 258),
    pytest.param("blobs", 258, marks=slow),
    pytest.param("analytic", 384, marks=slow),
    pytest.param("analytic", 511, marks=slow),
    pytest.param("analytic", 512, marks=slow),
    pytest.param("vae", 384, marks=slow),
    pytest.param("vae", 385, marks=slow),
    pytest.param("vae", 511, marks=slow),
    pytest.param("vae-other", 512, marks=slow),
]


class QueryLog:
    """A field that keeps the bit patterns of every point it was asked for."""

    def __init__(self, field) -> None:
        self.field, self.points = field, []

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        self.points.append(without_padding(points).view(torch.int32))
        return self.field(points)

    def distinct(self) -> tuple[int, int]:
        every = torch.cat(self.points)
        return len(every), len(torch.unique(every, dim=0))


@functools.cache
def decoded(field: str, resolution: int, strategy: str) -> DecodedGrid:
    return decode_field(FIELDS[field](), resolution, 64, STRATEGIES[strategy], chunk_size=CHUNK)


@pytest.mark.parametrize(("field", "resolution"), CASES)
def test_exact_is_the_official_grid_bit_for_bit(field: str, resolution: int) -> None:
    official, exact = (
        decoded(field, resolution, "hierarchical"),
        decoded(field, resolution, "exact"),
    )
    assert official.grid.isfinite().sum() > 1000
    assert torch.equal(bits(exact.grid), bits(official.grid))  # values and NaN pattern
    given = [queried + reused for queried, reused in zip(exact.queried, exact.reused, strict=True)]
    assert given == official.queried
    levels = STRATEGIES["exact"].levels(resolution, 64)
    if any(fine == 2 * coarse for coarse, fine in itertools.pairwise(levels)):
        assert sum(exact.queried) < sum(official.queried)  # a doubling level shares points
    else:  # only the coordinates ±1 are common to two levels
        assert sum(exact.reused) == sum(official.queried) - sum(exact.queried) <= 8 * len(levels)


@pytest.mark.parametrize(("field", "resolution"), [("analytic", 130), ("vae", 129)])
def test_exact_never_queries_the_same_coordinates_twice(field: str, resolution: int) -> None:
    log = QueryLog(FIELDS[field]())
    decode_field(log, resolution, 64, STRATEGIES["exact"], chunk_size=CHUNK)
    queried, distinct = log.distinct()
    assert queried == distinct

    official = QueryLog(FIELDS[field]())
    decode_field(official, resolution, 64, STRATEGIES["hierarchical"], chunk_size=CHUNK)
    assert official.distinct()[1] == distinct, "exact skips only repeats, never a new point"


@pytest.mark.parametrize(("field", "resolution"), CASES)
def test_fast_queries_fewer_points_and_keeps_the_official_values_it_has(
    field: str, resolution: int
) -> None:
    """What is true of the narrowed finest band on every field: its finite points are a subset
    of the official grid's with the same values, for fewer queries. Whether the mesh is the same
    depends on the field: see the next test."""
    official, fast = decoded(field, resolution, "hierarchical"), decoded(field, resolution, "fast")
    finite = fast.grid.isfinite()
    assert (official.grid.isfinite() | ~finite).all()
    assert torch.equal(bits(fast.grid[finite]), bits(official.grid[finite]))
    assert fast.queried[:-1] == decoded(field, resolution, "exact").queried[:-1]
    assert fast.queried[-1] <= official.queried[-1]
    if field == "analytic":  # saturated away from its surface: the band is most of the work
        assert fast.queried[-1] < 0.6 * official.queried[-1]


FAST_MESH_CASES = [
    ("analytic", 258),
    ("analytic", 385),
    ("blobs", 129),
    ("vae", 129),
    ("vae-other", 258),
]


@pytest.mark.parametrize(("field", "resolution"), FAST_MESH_CASES)
def test_fast_surface_cells_against_the_official_ones(field: str, resolution: int) -> None:
    """The cells marching cubes turns into faces, and their corner values: measured equal on
    these fields (the mesh is then the same); the fast mode stays opt-in since random and
    synthetic fields are not the real weights'."""
    official, fast = decoded(field, resolution, "hierarchical"), decoded(field, resolution, "fast")
    cells = surface_cells(official.grid)
    assert torch.equal(surface_cells(fast.grid), cells)
    corners = corners_of(cells)
    assert torch.equal(bits(fast.grid[corners]), bits(official.grid[corners]))


@pytest.mark.parametrize(
    "resolution", [258, pytest.param(384, marks=slow), pytest.param(385, marks=slow)]
)
def test_dense_has_every_point_and_the_official_mesh_cells(resolution: int) -> None:
    """On the analytic volume the official decoder's surface is the dense grid's (reference
    README §3.8); the finest level's coordinates can differ by one float32 ulp from linspace's."""
    official = decoded("analytic", resolution, "hierarchical").grid
    dense = decode_field(analytic_occupancy, resolution, 64, STRATEGIES["dense"], chunk_size=CHUNK)
    assert dense.queried == [(resolution + 1) ** 3] and not dense.grid.isnan().any()
    assert torch.equal(crossing_cells(dense.grid), surface_cells(official))
    finite = official.isfinite()
    torch.testing.assert_close(dense.grid[finite], official[finite], atol=1e-5, rtol=0)
