"""Dense and coarse-to-fine occupancy grids against the official decoder's outputs."""

from __future__ import annotations

import hashlib

import pytest
import torch
from decode_fields import without_padding
from reference import analytic_occupancy, config, tensors, tiny_vae

from backend.decoding import (
    STRATEGIES,
    decode_field,
    decode_grid,
    decode_steps,
    decode_volumes,
    grid_levels,
    linspace_points,
    vae_fields,
)
from backend.decoding.levels import LEVEL_STEPS
from backend.decoding.queries import ChunkedQueries
from backend.errors import BadInputError, Cancelled
from backend.pipeline import PipelineSettings

FP32 = {"atol": 1e-4, "rtol": 1e-4}


@pytest.mark.parametrize(
    ("resolution", "minimum", "levels"),
    [
        (32, 8, [8, 16, 32]),
        (384, 64, [96, 192, 384]),
        (512, 64, [64, 128, 256, 512]),
        (32, 64, [32]),
        (385, 64, [96, 192, 385]),
        (258, 64, [64, 129, 258]),
        (511, 64, [127, 255, 511]),
        (129, 64, [64, 129]),
    ],
)
def test_grid_levels(resolution: int, minimum: int, levels: list[int]) -> None:
    assert grid_levels(resolution, minimum) == levels


def test_dense_grid_of_the_tiny_vae() -> None:
    latent = tensors("vae/decode_query_fp32.safetensors")["latent"]
    grid = decode_grid(tiny_vae(), latent, 16, mode="dense", chunk_size=1000)
    torch.testing.assert_close(grid, tensors("vae/dense_r16_fp32.safetensors")["grid"], **FP32)


def test_both_volumes_through_the_decoder_at_once_give_the_official_fields() -> None:
    """One decoder batch for both latents and keys/values once per volume give the values of
    the official per-volume, per-chunk query."""
    vae = tiny_vae()
    latent = tensors("vae/decode_query_fp32.safetensors")["latent"]
    latents = torch.cat([latent, latent.flip(1) * 0.5])
    points = torch.rand(500, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1
    together = vae_fields(vae, latents)
    for index, field in enumerate(together):
        with torch.no_grad():
            hidden = vae.decode(latents[index : index + 1])
            official = vae.query(points[None], hidden)[0, :, 0]
        torch.testing.assert_close(field(points), official, **FP32)
    assert not torch.allclose(together[0](points), together[1](points))


def decode(field, resolution: int, minimum: int, strategy: str = "hierarchical", **options):
    return decode_field(field, resolution, minimum, STRATEGIES[strategy], **options)


class RecordingField:
    """Wraps a field; groups the points it is asked for by level (`on_step` says when)."""

    def __init__(self, field) -> None:
        self.field = field
        self.levels: list[list[torch.Tensor]] = [[]]

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        self.levels[-1].append(without_padding(points))
        return self.field(points)

    def on_step(self, step: int, total: int) -> None:
        if step == LEVEL_STEPS * len(self.levels):
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

    field = RecordingField(vae_fields(tiny_vae(), latent)[0])
    decode(field, 32, 8, on_step=field.on_step)
    for level, mask in field.masks([8, 16, 32]).items():
        assert torch.equal(mask, ref[f"queried_mask_r{level}"]), f"level {level}"


@pytest.mark.parametrize("strategy", ["hierarchical", "exact"])
def test_analytic_grid_is_the_official_one_bit_for_bit(strategy: str) -> None:
    ref = tensors("vae/hier_analytic_r32.safetensors")
    field = RecordingField(analytic_occupancy)
    grid = decode(field, 32, 8, strategy, on_step=field.on_step).grid
    assert torch.equal(grid.isnan(), ref["grid"].isnan())
    assert torch.equal(grid.nan_to_num(), ref["grid"].nan_to_num())
    if strategy == "hierarchical":
        for level, mask in field.masks([8, 16, 32]).items():
            assert torch.equal(mask, ref[f"queried_mask_r{level}"]), f"level {level}"


@pytest.mark.parametrize(
    ("run", "strategy"),
    [
        ("384_64", "hierarchical"),
        ("384_64", "exact"),
        ("512_64", "hierarchical"),
        pytest.param("512_64", "exact", marks=pytest.mark.slow),
    ],
)
def test_analytic_summaries_of_the_official_decoder_at_full_resolution(
    run: str, strategy: str
) -> None:
    """The app's default (384/64) and the >= 512 branch (wide dilation)."""
    summary = config("vae/hier_analytic_summaries.json")["runs"][run]
    decoded = decode(
        analytic_occupancy,
        summary["resolution"],
        summary["min_resolution"],
        strategy,
        chunk_size=1 << 20,
    )
    grid, finite = decoded.grid, decoded.grid.isfinite()
    given = [
        queried + reused for queried, reused in zip(decoded.queried, decoded.reused, strict=True)
    ]
    assert given == [summary["queried_points_per_level"][str(r)] for r in summary["levels"]]
    if strategy == "hierarchical":
        assert decoded.reused == [0] * len(given)
    else:
        assert decoded.reused[-1] > 0.1 * given[-1]
    digest = hashlib.sha256(finite.numpy().astype("uint8").tobytes()).hexdigest()
    assert digest == summary["final_finite_mask_sha256"]
    assert int((grid[finite] >= 0).sum()) == summary["final_positive_count"]
    assert grid[finite].double().sum().item() == pytest.approx(
        summary["sum_of_finite_values_float64"], abs=1e-6
    )


@pytest.mark.parametrize("strategy", ["hierarchical", "exact", "fast"])
def test_a_level_that_marks_nothing_gives_an_empty_grid_instead_of_crashing(strategy) -> None:
    grid = decode(lambda points: torch.ones(points.shape[0]), 32, 8, strategy).grid
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
        decode(field, 32, 8, chunk_size=100, should_cancel=lambda: len(calls) >= 3)
    assert len(calls) == 3


def test_every_chunk_has_one_shape_and_the_padding_is_dropped() -> None:
    shapes: list[int] = []

    def field(points: torch.Tensor) -> torch.Tensor:
        shapes.append(points.shape[0])
        return analytic_occupancy(points)

    grid = decode(field, 32, 8, "exact", chunk_size=1000).grid
    assert set(shapes) == {1000}
    assert sum(shapes) % 1000 == 0
    assert torch.equal(
        grid.isnan(), decode(analytic_occupancy, 32, 8, chunk_size=1 << 20).grid.isnan()
    )
    points = torch.rand(2500, 3, generator=torch.Generator().manual_seed(1)) * 2 - 1
    values = ChunkedQueries(field, 1000)(points)
    assert values.shape == (2500,)
    assert torch.equal(values, analytic_occupancy(points))


def test_progress_moves_within_a_level_chunk_by_chunk() -> None:
    steps: list[tuple[int, int]] = []
    decoded = decode(
        analytic_occupancy, 64, 16, "exact", chunk_size=4096, on_step=lambda *s: steps.append(s)
    )
    total = LEVEL_STEPS * 3
    assert {seen_total for _, seen_total in steps} == {total}
    done = [step for step, _ in steps]
    assert done == sorted(done) and done[-1] == total
    finest = [step for step in done if 2 * LEVEL_STEPS < step < total]
    chunks_at_finest = -(-decoded.queried[-1] // 4096)
    assert len(set(finest)) >= min(chunks_at_finest - 1, LEVEL_STEPS - 1) > 1


def test_out_of_memory_retries_in_smaller_chunks() -> None:
    def small_device(points: torch.Tensor) -> torch.Tensor:
        if points.shape[0] > 3000:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return analytic_occupancy(points)

    grid = decode(small_device, 16, 16, "dense", chunk_size=16384).grid
    assert torch.equal(grid, decode(analytic_occupancy, 16, 16, "dense").grid)

    oversized: list[int] = []

    def remembers(points: torch.Tensor) -> torch.Tensor:
        if points.shape[0] > 1024:
            oversized.append(points.shape[0])
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return analytic_occupancy(points)

    decode(remembers, 32, 8, "exact", chunk_size=16384)
    # 16384 -> 8192 -> 4096 -> 2048 -> 1024 works: four failures at the first level, none later.
    assert len(oversized) == 4

    def no_device(points: torch.Tensor) -> torch.Tensor:
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    with pytest.raises(torch.OutOfMemoryError):
        decode(no_device, 16, 16, "dense")


def test_both_volumes_decode_as_each_alone_with_progress_chunk_by_chunk() -> None:
    vae = tiny_vae()
    part = tensors("vae/decode_query_fp32.safetensors")["latent"]
    latent = torch.cat([part, part.flip(1) * 0.5], dim=1)  # [1, 2 * 16, 8]
    strategy = STRATEGIES["exact"]
    steps: list[tuple[int, int]] = []
    grids = decode_volumes(vae, latent, 128, strategy, 4096, lambda *step: steps.append(step))
    total = decode_steps(strategy, 128)
    assert total == 2 * 2 * LEVEL_STEPS  # 128 decodes at 64 and 128
    assert {seen for _, seen in steps} == {total} and steps[-1][0] == total
    done = [step for step, _ in steps]
    assert done == sorted(done) and len(set(done)) > 4 * 4
    alone = decode_grid(vae, latent.chunk(2, dim=1)[1], 128, mode="hierarchical", chunk_size=4096)
    assert torch.equal(torch.from_numpy(grids[1]).isnan(), alone.isnan())
    finite = alone.isfinite()
    torch.testing.assert_close(torch.from_numpy(grids[1])[finite], alone[finite], **FP32)


@pytest.mark.parametrize("name", ["surface", "guesswork"])
def test_an_unknown_strategy_is_bad_input_naming_the_choices(name: str) -> None:
    with pytest.raises(BadInputError, match=name) as caught:
        PipelineSettings(decode_strategy=name)
    assert caught.value.hint == "choose one of exact, hierarchical, fast, dense"
    assert PipelineSettings().decode_strategy == "exact"
