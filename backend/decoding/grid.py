"""The coarse-to-fine grid's geometry (reference README §3.5-3.6): the levels, each level's point
coordinates, and which points of a level to refine from the previous one.

A grid of resolution r holds r+1 points per axis; grid[i, j, k] is the value at (x_i, y_j, z_k),
positive inside. x varies slowest and z fastest when points are flattened.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MIN_RESOLUTION = 64
"""The official decoder's bound on its coarsest level: 384 decodes at 96, 192 and 384."""
UNQUERIED = -100.0
"""What a level's grid holds where it was not queried (negative for the sign rule)."""
BAND = 0.95
WIDE_DILATION_FROM = 512


def grid_levels(resolution: int, min_resolution: int) -> list[int]:
    """Halve from `resolution` (integer division) while at least `min_resolution`, coarsest
    first (384/64 → 96, 192, 384; 385/64 → 96, 192, 385). A resolution below the minimum is a
    single dense level."""
    levels = [resolution]
    while levels[-1] // 2 >= min_resolution:
        levels.append(levels[-1] // 2)
    return levels[::-1]


def level_axis(resolution: int, coarsest: bool, device: torch.device | str = "cpu") -> torch.Tensor:
    """The float32 coordinates of one axis of a level: linspace(-1, 1) in float64 for the
    coarsest (dense) level, (2i)/r - 1 in float32 for the refined ones, as the official decoder
    computes them. The two can differ by one ulp at the same point."""
    if coarsest:
        return torch.linspace(-1, 1, resolution + 1, dtype=torch.float64).float().to(device)
    return torch.arange(resolution + 1, device=device).float() * 2 / resolution - 1


def linspace_points(resolution: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """All points of a dense grid [(r+1)^3, 3], x slowest and z fastest."""
    axis = level_axis(resolution, coarsest=True, device=device)
    return torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(-1, 3)


def points_at(axis: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """The contiguous [N, 3] points of grid indices [N, 3] on a level's axis."""
    return torch.stack([axis[indices[:, 0]], axis[indices[:, 1]], axis[indices[:, 2]]], dim=1)


def refinement_mask(coarse: torch.Tensor, resolution: int, band: float = BAND) -> torch.Tensor:
    """Which points of the level-`resolution` grid to query, from the previous level's grid
    (unqueried points hold UNQUERIED): near a sign change or where |value| < band, dilated."""
    inside = coarse >= 0
    marked = coarse.abs() < band
    for axis in range(3):
        changes = inside.narrow(axis, 1, inside.shape[axis] - 1) != inside.narrow(
            axis, 0, inside.shape[axis] - 1
        )
        marked.narrow(axis, 1, changes.shape[axis]).logical_or_(changes)
        marked.narrow(axis, 0, changes.shape[axis]).logical_or_(changes)
    wide = resolution >= WIDE_DILATION_FROM
    if not wide:
        marked = dilate(marked, 3)
    fine = torch.zeros((resolution + 1,) * 3, dtype=torch.bool, device=coarse.device)
    fine[::2, ::2, ::2] = marked
    return dilate(fine, 5 if wide else 3)


def dilate(mask: torch.Tensor, size: int) -> torch.Tensor:
    """Box dilation; neighbours outside the grid count as unmarked."""
    pooled = F.max_pool3d(mask[None, None].half(), size, stride=1, padding=size // 2)
    return pooled[0, 0] > 0
