"""Occupancy grids from part latents: dense, or coarse-to-fine (reference README §3.5-3.6).

grid.py holds the geometry (levels, coordinates, refinement masks), queries.py the chunked
field queries, strategies.py what each strategy queries and reuses, levels.py the one level
loop, volumes.py the decoding of a generation's two volumes.
"""

from __future__ import annotations

import torch

from ..errors import CancelCheck
from ..models import VAE
from .grid import MIN_RESOLUTION, grid_levels, linspace_points
from .levels import DecodedGrid, decode_field
from .queries import DEFAULT_CHUNK_SIZE, Field, query_chunk_size
from .strategies import DEFAULT_STRATEGY, STRATEGIES, Strategy, strategy_named
from .volumes import decode_steps, decode_volumes, vae_fields

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_STRATEGY",
    "MIN_RESOLUTION",
    "STRATEGIES",
    "DecodedGrid",
    "Field",
    "Strategy",
    "decode_field",
    "decode_grid",
    "decode_steps",
    "decode_volumes",
    "grid_levels",
    "linspace_points",
    "query_chunk_size",
    "strategy_named",
    "vae_fields",
]


def decode_grid(
    vae: VAE,
    latent: torch.Tensor,
    resolution: int,
    min_resolution: int = MIN_RESOLUTION,
    mode: str = "hierarchical",
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    should_cancel: CancelCheck | None = None,
) -> torch.Tensor:
    """The (res+1)^3 float32 occupancy grid of one part latent [1, latent_size, latent_dim];
    `mode` is a strategy's name ("dense", "hierarchical", "exact" or "fast")."""
    decoded = decode_field(
        vae_fields(vae, latent)[0],
        resolution,
        min_resolution,
        strategy_named(mode),
        chunk_size=chunk_size,
        device=latent.device,
        should_cancel=should_cancel,
    )
    return decoded.grid
