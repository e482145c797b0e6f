"""Dense and coarse-to-fine occupancy grids against the official decoder's outputs."""

from __future__ import annotations

import hashlib

import pytest
import torch
from reference import analytic_occupancy, config, tensors, tiny_vae

from backend.decoding import (
    decode_grid,
    dense_grid,
    grid_levels,
    hierarchical_grid,
    linspace_points,
    surface_grid,
    vae_field,
    vae_fields,
)
from backend.errors import Cancelled

FP32 = {"atol": 1e-4, "rtol": 1e-4}


@pytest.mark.parametrize(
    ("resolution", "minimum", "levels"),
    [
        (32, 8, [8, 16, 32]),
        (384, 64, [96, 192, 384]),
        (512, 64, [64, 128, 256, 512]),
        (32, 64, [32]),
    ],
)
def test_grid_levels(resolution: int, minimum: int, levels: list[int]) -> None:
    assert grid_levels(resolution, minimum) == levels


def test_dense_grid_of_the_tiny_vae() -> None:
    latent = tensors("vae/decode_query_fp32.safetensors")["latent"]
    grid = decode_grid(tiny_vae(), latent, 16, mode="dense", chunk_size=1000)
    torch.testing.assert_close(grid, tensors("vae/dense_r16_fp32.safetensors")["grid"], **FP32)


def test_both_volumes_through_the_decoder_at_once_give_each_volumes_field() -> None:
    vae = tiny_vae()
    latent = tensors("vae/decode_query_fp32.safetensors")["latent"]
    latents = torch.cat([latent, latent.flip(1) * 0.5])
    points = torch.rand(500, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1
    together = vae_fields(vae, latents)
    for index, field in enumerate(together):
        alone = vae_field(vae, latents[index : index + 1])
        torch.testing.assert_close(field(points), alone(points), **FP32)
    assert not torch.allclose(together[0](points), together[1](points))


class RecordingField:
    """Wraps a field; groups the points it is asked for by level."""

    def __init__(self, field) -> None:
        self.field = field
        self.levels: list[list[torch.Tensor]] = [[]]

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        self.levels[-1].append(points.clone())
        return self.field(points)

    def next_level(self, number: int, total: int) -> None:
        self.levels.append([])

    def masks(self, levels: list[int]) -> dict[int, torch.Tensor]:
        masks = {}
        for level, batches in zip(levels, self.levels, strict=False):
            indices = torch.round((torch.cat(batches) + 1) * level / 2).long()
            mask = torch.zeros((level + 1,) * 3, dtype=torch.uint8)
            mask[indices[:, 0], indices[:, 1], indices[:, 2]] = 1
            assert int(mask.sum()) == indices.shape[0], "a point was queried twice"
            masks[level] = mask
        return masks


def test_hierarchical_grid_of_the_tiny_vae_matches_grid_and_masks() -> None:
    ref = tensors("vae/hier_net_r32_fp32.safetensors")
    latent = tensors("vae/decode_query_fp32.safetensors")["latent"]
    grid = decode_grid(tiny_vae(), latent, 32, 8, mode="hierarchical", chunk_size=777)
    assert torch.equal(grid.isnan(), ref["grid"].isnan())
    torch.testing.assert_close(grid.nan_to_num(), ref["grid"].nan_to_num(), **FP32)

    field = RecordingField(vae_field(tiny_vae(), latent))
    hierarchical_grid(field, 32, 8, on_level=field.next_level)
    for level, mask in field.masks([8, 16, 32]).items():
        assert torch.equal(mask, ref[f"queried_mask_r{level}"]), f"level {level}"


def test_hierarchical_analytic_grid_is_exact_with_exact_masks() -> None:
    ref = tensors("vae/hier_analytic_r32.safetensors")
    field = RecordingField(analytic_occupancy)
    grid = hierarchical_grid(field, 32, 8, on_level=field.next_level)
    assert torch.equal(grid.isnan(), ref["grid"].isnan())
    assert torch.equal(grid.nan_to_num(), ref["grid"].nan_to_num())
    for level, mask in field.masks([8, 16, 32]).items():
        assert torch.equal(mask, ref[f"queried_mask_r{level}"]), f"level {level}"


@pytest.mark.parametrize("run", ["384_64", "512_64"])
def test_hierarchical_analytic_summaries_at_full_resolution(run: str) -> None:
    """The app's default (384/64) and the >= 512 branch (wide dilation)."""
    summary = config("vae/hier_analytic_summaries.json")["runs"][run]
    counts: list[int] = []
    field = RecordingField(analytic_occupancy)

    def count_level(number: int, total: int) -> None:
        counts.append(sum(batch.shape[0] for batch in field.levels[-1]))
        field.next_level(number, total)

    grid = hierarchical_grid(
        field,
        summary["resolution"],
        summary["min_resolution"],
        chunk_size=1 << 20,
        on_level=count_level,
    )
    finite = grid.isfinite()
    expected_counts = [summary["queried_points_per_level"][str(r)] for r in summary["levels"]]
    assert counts == expected_counts
    digest = hashlib.sha256(finite.numpy().astype("uint8").tobytes()).hexdigest()
    assert digest == summary["final_finite_mask_sha256"]
    assert int((grid[finite] >= 0).sum()) == summary["final_positive_count"]
    assert grid[finite].double().sum().item() == pytest.approx(
        summary["sum_of_finite_values_float64"], abs=1e-6
    )


def test_a_level_that_marks_nothing_gives_an_empty_grid_instead_of_crashing() -> None:
    grid = hierarchical_grid(lambda points: torch.ones(points.shape[0]), 32, 8)
    assert grid.shape == (33, 33, 33)
    assert grid.isnan().all()


def test_dense_points_are_linspace_in_ij_order() -> None:
    points = linspace_points(4)
    assert points.shape == (125, 3)
    assert points[1].tolist() == [-1.0, -1.0, -0.5]
    assert points[25].tolist() == [-0.5, -1.0, -1.0]
    ref_points = tensors("vae/decode_query_fp32.safetensors")["points"][0, :125]
    assert torch.equal(points, ref_points)


def test_cancel_between_decode_chunks() -> None:
    calls: list[int] = []

    def field(points: torch.Tensor) -> torch.Tensor:
        calls.append(points.shape[0])
        return analytic_occupancy(points)

    with pytest.raises(Cancelled):
        hierarchical_grid(field, 32, 8, chunk_size=100, should_cancel=lambda: len(calls) >= 3)
    assert len(calls) == 3


def crossing_cells(grid: torch.Tensor) -> torch.Tensor:
    """Cells whose eight corners are not all on one side (marching cubes' inside is v > 0)."""
    inside = (grid > 0).float()[None, None]
    highest = torch.nn.functional.max_pool3d(inside, 2, stride=1)
    lowest = -torch.nn.functional.max_pool3d(-inside, 2, stride=1)
    return (highest != lowest)[0, 0]


def corners_of(cells: torch.Tensor) -> torch.Tensor:
    corners = torch.zeros(tuple(n + 1 for n in cells.shape), dtype=torch.bool)
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                corners[dx : dx + cells.shape[0], dy : dy + cells.shape[1], dz:][
                    : cells.shape[0], : cells.shape[1], : cells.shape[2]
                ] |= cells
    return corners


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


def surface_cells(grid: torch.Tensor) -> torch.Tensor:
    """The cells marching cubes turns into faces that survive: crossed, all corners finite."""
    finite = -torch.nn.functional.max_pool3d(-grid.isfinite().float()[None, None], 2, stride=1)
    return crossing_cells(grid.nan_to_num(-1.0)) & (finite[0, 0] > 0)


@pytest.mark.parametrize(
    ("field", "resolution", "minimum"),
    [(analytic_occupancy, 128, 16), (analytic_occupancy, 192, 48), (blobs_and_plates, 192, 48)],
)
def test_surface_grid_gives_the_official_mesh(field, resolution: int, minimum: int) -> None:
    """Marching cubes reads only the cells the surface crosses: the same cells with the same
    corner values mean the same mesh."""
    official = hierarchical_grid(field, resolution, minimum, chunk_size=1 << 18)
    fast = surface_grid(field, resolution, minimum, chunk_size=1 << 18)
    cells = surface_cells(official)
    assert cells.sum() > 1000
    assert torch.equal(surface_cells(fast), cells)
    corners = corners_of(cells)
    torch.testing.assert_close(fast[corners], official[corners], atol=1e-6, rtol=0)
    if field is analytic_occupancy:
        assert torch.equal(cells, crossing_cells(dense_grid(field, resolution, 1 << 18)))


def test_surface_grid_queries_at_most_60_percent_of_the_official_decoder() -> None:
    counts = {}
    for name, strategy in [("official", hierarchical_grid), ("surface", surface_grid)]:
        field = RecordingField(analytic_occupancy)
        strategy(field, 384, 64, chunk_size=1 << 20)
        counts[name] = sum(batch.shape[0] for batch in field.levels[0])
    assert counts["official"] == 912673 + 1084159 + 8193954
    assert counts["surface"] <= 0.6 * counts["official"]


def test_out_of_memory_retries_in_smaller_chunks() -> None:
    def small_device(points: torch.Tensor) -> torch.Tensor:
        if points.shape[0] > 3000:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return analytic_occupancy(points)

    grid = dense_grid(small_device, 16, chunk_size=16384)
    assert torch.equal(grid, dense_grid(analytic_occupancy, 16))

    oversized: list[int] = []

    def remembers(points: torch.Tensor) -> torch.Tensor:
        if points.shape[0] > 2000:  # levels 16 (2802 points) and 32 (9962 points) exceed it
            oversized.append(points.shape[0])
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return analytic_occupancy(points)

    surface_grid(remembers, 32, 8, chunk_size=16384)
    # 16384 -> 8192 -> 4096 -> 2048 -> 1024 works: four failures at level 16, none at level 32.
    assert len(oversized) == 4

    def no_device(points: torch.Tensor) -> torch.Tensor:
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    with pytest.raises(torch.OutOfMemoryError):
        dense_grid(no_device, 16)
