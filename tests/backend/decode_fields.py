"""Occupancy fields and grid measures for the decoder tests: synthetic fields, tiny random-weight
VAE fields, and the cells marching cubes turns into faces."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from tiny_weights import randomize, shape_vae_field

from backend.decoding import vae_fields
from backend.models import VAE, VAEConfig

SMALL_VAE = VAEConfig(
    hidden_dim=16,
    num_heads=2,
    num_dec_layers=1,
    dec_hidden_dim=16,
    dec_num_heads=2,
    query_hidden_dim=16,
    query_num_heads=2,
    latent_size=16,
    latent_dim=8,
)
"""Smaller than tests/tiny_weights.py's VAE, so that grids of 258 and more stay quick."""


def blobs_and_plates(points: torch.Tensor) -> torch.Tensor:
    """300 small separated balls and two thin plates: parts that fall between coarse samples."""
    generator = torch.Generator().manual_seed(3)
    centres = torch.rand(300, 3, generator=generator) * 1.6 - 0.8
    radii = 0.015 + 0.03 * torch.rand(300, generator=generator)
    distances = torch.cdist(points, centres, compute_mode="donot_use_mm_for_euclid_dist")
    balls = (radii - distances).max(dim=1).values
    plate = 0.012 - (points[:, 2] - 0.9).abs()
    slab = 0.006 - (points[:, 0] + 0.93).abs()
    return (8 * torch.maximum(torch.maximum(balls, plate), slab)).clamp(-1, 1)


@functools.cache
def tiny_vae_field(seed: int):
    """The field of a random latent through a random-weight VAE shaped as tests/tiny_weights.py
    shapes its VAE (smooth, about 12% inside), with a four times steeper output."""
    generator = torch.Generator().manual_seed(seed)
    vae = VAE(SMALL_VAE).eval()
    randomize(vae, generator)
    latents = [torch.randn(1, 16, 8, generator=generator) for _ in range(2)]
    shape_vae_field(vae, latents)
    with torch.no_grad():
        vae.proj_out.weight.mul_(4)
        vae.proj_out.bias.mul_(4)
    return vae_fields(vae, latents[0])[0]


def without_padding(chunk: torch.Tensor) -> torch.Tensor:
    """A chunk without the copies of its last point that pad it (a level has no duplicates)."""
    repeats = (chunk == chunk[-1]).all(dim=1).flip(0).cumprod(0).sum()
    return chunk[: len(chunk) - int(repeats) + 1].clone()


def crossing_cells(grid: torch.Tensor) -> torch.Tensor:
    """Cells whose eight corners are not all on one side (marching cubes' inside is v > 0)."""
    inside = (grid > 0).float()[None, None]
    highest = F.max_pool3d(inside, 2, stride=1)
    lowest = -F.max_pool3d(-inside, 2, stride=1)
    return (highest != lowest)[0, 0]


def surface_cells(grid: torch.Tensor) -> torch.Tensor:
    """The cells marching cubes turns into faces that survive: crossed, all corners finite."""
    finite = -F.max_pool3d(-grid.isfinite().float()[None, None], 2, stride=1)
    return crossing_cells(grid.nan_to_num(-1.0)) & (finite[0, 0] > 0)


def corners_of(cells: torch.Tensor) -> torch.Tensor:
    """The grid points at a corner of any of `cells`."""
    corners = torch.zeros(tuple(n + 1 for n in cells.shape), dtype=torch.bool)
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                corners[dx : dx + cells.shape[0], dy : dy + cells.shape[1], dz:][
                    : cells.shape[0], : cells.shape[1], : cells.shape[2]
                ] |= cells
    return corners


def bits(grid: torch.Tensor) -> torch.Tensor:
    """A float32 grid's bit patterns, so that NaN compares equal to NaN."""
    return grid.contiguous().view(torch.int32)
