"""The level loop: query the coarsest level densely, then each finer level where the strategy
marks it, reusing what the strategy allows. The result is NaN where the finest level was not
given a value, as in the official coarse-to-fine grid."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..errors import CancelCheck
from .grid import UNQUERIED, level_axis, points_at
from .queries import DEFAULT_CHUNK_SIZE, ChunkedQueries, Field
from .strategies import Strategy

LEVEL_STEPS = 100
"""Progress steps per level: a level advances them in proportion to its points queried."""
StepCallback = Callable[[int, int], None]


@dataclass
class DecodedGrid:
    grid: torch.Tensor
    """(r+1)^3 float32, NaN where not given a value."""
    queried: list[int] = field(default_factory=list)
    """Points sent to the field, per level (padding not counted)."""
    reused: list[int] = field(default_factory=list)
    """Points of each level whose value came from an earlier level instead."""


@dataclass
class Level:
    """One level's grid as the next level's marks see it, and the coordinates behind it."""

    axis: torch.Tensor
    values: torch.Tensor
    given: torch.Tensor

    def matching_indices(self, axis: torch.Tensor) -> torch.Tensor:
        """For each coordinate of `axis`, the index of the bitwise-equal one here, else -1."""
        found = torch.searchsorted(self.axis, axis).clamp(max=len(self.axis) - 1)
        same = self.axis[found].view(torch.int32) == axis.view(torch.int32)
        return torch.where(same, found, -1)


def decode_field(
    field: Field,
    resolution: int,
    min_resolution: int,
    strategy: Strategy,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    device: torch.device | str = "cpu",
    on_step: StepCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> DecodedGrid:
    """The grid of `field` at `resolution` as `strategy` decodes it. `on_step(step, total)`
    counts LEVEL_STEPS per level."""
    levels = strategy.levels(resolution, min_resolution)
    query = ChunkedQueries(field, chunk_size, should_cancel)
    total = LEVEL_STEPS * len(levels)
    history: list[Level] = []
    result = DecodedGrid(torch.empty(0))
    for number, level in enumerate(levels):

        def on_chunk(done: int, points: int, first: int = number * LEVEL_STEPS) -> None:
            if on_step is not None:
                on_step(first + LEVEL_STEPS * done // points, total)

        axis = level_axis(level, coarsest=not history, device=device)
        if history:
            marked = strategy.marks(history[-1].values, level, level == levels[-1])
            indices = marked.nonzero()
            values, queried = refine(query, axis, indices, history, strategy, on_chunk)
            grid = torch.full_like(marked, UNQUERIED, dtype=torch.float32)
            grid[indices[:, 0], indices[:, 1], indices[:, 2]] = values
        else:
            points = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1)
            grid = query(points.reshape(-1, 3), on_chunk).view((level + 1,) * 3)
            marked = torch.ones_like(grid, dtype=torch.bool)
            queried = grid.numel()
        result.queried.append(queried)
        result.reused.append(int(marked.sum()) - queried)
        history.append(Level(axis, grid, marked))
        if on_step is not None:
            on_step((number + 1) * LEVEL_STEPS, total)
    result.grid = history[-1].values.masked_fill(~history[-1].given, float("nan"))
    return result


def refine(
    query: ChunkedQueries,
    axis: torch.Tensor,
    indices: torch.Tensor,
    history: list[Level],
    strategy: Strategy,
    on_chunk: Callable[[int, int], None],
) -> tuple[torch.Tensor, int]:
    """The values at the marked `indices` [N, 3] of a level, and how many were queried."""
    values = torch.empty(len(indices), dtype=torch.float32, device=indices.device)
    missing = torch.ones(len(indices), dtype=torch.bool, device=indices.device)
    if strategy.reuses_values:
        for level in reversed(history):
            reuse_known(level, axis, indices, values, missing)
    wanted = missing.nonzero()[:, 0]
    values[wanted] = query(points_at(axis, indices[wanted]), on_chunk)
    return values, len(wanted)


def reuse_known(
    level: Level,
    axis: torch.Tensor,
    indices: torch.Tensor,
    values: torch.Tensor,
    missing: torch.Tensor,
) -> None:
    """Fill `values` where still `missing` from `level`'s points at bitwise-equal coordinates."""
    there = level.matching_indices(axis)
    on_axis = there >= 0
    candidates = missing & on_axis[indices[:, 0]] & on_axis[indices[:, 1]] & on_axis[indices[:, 2]]
    candidates = candidates.nonzero()[:, 0]
    at = there[indices[candidates]]
    known = level.given[at[:, 0], at[:, 1], at[:, 2]]
    candidates, at = candidates[known], at[known]
    values[candidates] = level.values[at[:, 0], at[:, 1], at[:, 2]]
    missing[candidates] = False
