"""Decoding a generation's latent: both part volumes, their fields from one VAE batch."""

from __future__ import annotations

import logging

import numpy as np
import torch

from ..errors import CancelCheck
from ..models import VAE
from ..models.vae import QueryContext
from .grid import MIN_RESOLUTION
from .levels import LEVEL_STEPS, StepCallback, decode_field
from .queries import Field
from .strategies import Strategy

log = logging.getLogger(__name__)

VOLUMES = 2


def vae_fields(vae: VAE, latents: torch.Tensor) -> list[Field]:
    """The occupancy fields of part latents [B, latent_size, latent_dim], their decoder run as
    one batch. The query's keys and values depend only on the latent: they are computed once
    here, not once per chunk."""
    with torch.no_grad():
        context = vae.query_context(vae.decode(latents))
    return [_field(vae, context.select(index)) for index in range(len(latents))]


def _field(vae: VAE, context: QueryContext) -> Field:
    def occupancy(points: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return vae.query_with_context(points[None], context)[0, :, 0]

    return occupancy


def decode_steps(strategy: Strategy, resolution: int) -> int:
    """The progress steps of decoding both volumes."""
    return VOLUMES * LEVEL_STEPS * len(strategy.levels(resolution, MIN_RESOLUTION))


def decode_volumes(
    vae: VAE,
    latent: torch.Tensor,
    resolution: int,
    strategy: Strategy,
    chunk_size: int,
    on_step: StepCallback,
    should_cancel: CancelCheck | None = None,
) -> list[np.ndarray]:
    """The grids of both volumes of a sampled latent [1, 2 * latent_size, latent_dim], with
    progress in `decode_steps` steps."""
    fields = vae_fields(vae, torch.cat(latent.chunk(VOLUMES, dim=1)))
    per_volume = decode_steps(strategy, resolution) // VOLUMES
    grids = []
    for index, field in enumerate(fields):

        def step(done: int, _: int, first: int = index * per_volume) -> None:
            on_step(first + done, per_volume * VOLUMES)

        decoded = decode_field(
            field,
            resolution,
            MIN_RESOLUTION,
            strategy,
            chunk_size=chunk_size,
            device=latent.device,
            on_step=step,
            should_cancel=should_cancel,
        )
        log.debug(
            "volume %d: %s points queried, %s reused per level",
            index,
            decoded.queried,
            decoded.reused,
        )
        grids.append(decoded.grid.cpu().numpy())
    return grids
