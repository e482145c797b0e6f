"""The decode strategies: policies for what the level loop queries and what it reuses."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import BadInputError
from .grid import BAND, grid_levels, refinement_mask

FINEST_BAND = 0.3
"""The fast strategy's band at the finest level, in place of BAND."""


@dataclass(frozen=True)
class Strategy:
    name: str
    coarse_to_fine: bool = True
    """False: one dense level at the full resolution."""
    finest_band: float = BAND
    """The refinement band at the finest level (the coarser levels always use BAND)."""
    reuses_values: bool = True
    """Take a point's value from an earlier level that queried the same float32 coordinates
    (bit for bit) instead of querying it again."""

    def levels(self, resolution: int, min_resolution: int) -> list[int]:
        return grid_levels(resolution, min_resolution) if self.coarse_to_fine else [resolution]

    def marks(self, previous: torch.Tensor, resolution: int, finest: bool) -> torch.Tensor:
        """The points of the level-`resolution` grid to give a value, from the previous grid."""
        return refinement_mask(previous, resolution, self.finest_band if finest else BAND)


EXACT = Strategy("exact")
"""The official coarse-to-fine grid (values, masks, NaNs), no point queried twice."""
HIERARCHICAL = Strategy("hierarchical", reuses_values=False)
"""The official coarse-to-fine decoder, query for query."""
FAST = Strategy("fast", finest_band=FINEST_BAND)
"""Fewer queries at the finest level: may differ from the official mesh."""
DENSE = Strategy("dense", coarse_to_fine=False)
"""Every grid point; no NaN."""
STRATEGIES = {strategy.name: strategy for strategy in (EXACT, HIERARCHICAL, FAST, DENSE)}
DEFAULT_STRATEGY = EXACT.name


def strategy_named(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise BadInputError(
            f"unknown decode strategy {name!r}", f"choose one of {', '.join(STRATEGIES)}"
        ) from None
