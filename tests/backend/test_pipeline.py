"""The whole generation with tiny random-weight checkpoints on the CPU."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from backend.errors import BadInputError, Cancelled, DeviceOutOfMemoryError
from backend.export import read_npz
from backend.models import normalize_image
from backend.params import GenerationParams
from backend.pipeline import PartPackerPipeline, PipelineSettings, Progress
from backend.sampling import initial_noise, sample

QUICK = {"steps": 3, "grid_res": 32, "randomize_seed": False}


@pytest.fixture(scope="module")
def first_result(tiny_pipeline: PartPackerPipeline, object_image: Path, tmp_path_factory):
    progress: list[Progress] = []
    output = tmp_path_factory.mktemp("job")
    result = tiny_pipeline.generate(
        object_image, output, GenerationParams(seed=11, **QUICK), on_progress=progress.append
    )
    return result, progress


def test_generation_writes_separate_coloured_parts(first_result) -> None:
    result, _ = first_result
    parts = read_npz(result.npz)
    assert len(parts) >= 2
    assert {part.volume for part in parts} == {0, 1}
    assert [part.name for part in parts] == [f"part_{i:03d}" for i in range(len(parts))]
    assert all(len(part.faces) > 10 for part in parts)
    assert len({tuple(part.color) for part in parts[:29]}) == min(len(parts), 29)
    scene = trimesh.load(result.glb, force="scene")
    assert len(scene.geometry) == len(parts)
    assert result.preview.exists()
    record = json.loads(result.result_json.read_text())
    assert record["seed"] == 11
    assert record["params"]["steps"] == 3
    assert [part["name"] for part in record["parts"]] == [part.name for part in parts]
    assert set(record["timings"]) >= {"prepare", "sample", "decode", "export"}
    assert record["timings"] == result.timings
    kernels = {name.lower() for name in torch.nn.attention.SDPBackend.__members__}
    assert set(record["attention_kernels"]) == {"dinov2", "dit", "vae", "vae_query"}
    assert set(record["attention_kernels"].values()) <= kernels - {"error"}


def test_progress_runs_through_every_stage_in_order(first_result) -> None:
    _, progress = first_result
    stages = list(dict.fromkeys(event.stage for event in progress))
    expected = ["prepare", "condition", "sample", "decode", "extract", "postprocess", "export"]
    assert [stage for stage in stages if stage != "load"] == expected
    sampling = [event.step for event in progress if event.stage == "sample"]
    assert sampling == [0, 1, 2, 3]


def test_same_seed_same_parts_other_seed_other_parts(
    tiny_pipeline: PartPackerPipeline, object_image: Path, first_result, tmp_path: Path
) -> None:
    first, _ = first_result
    again = tiny_pipeline.generate(object_image, tmp_path / "a", GenerationParams(seed=11, **QUICK))
    other = tiny_pipeline.generate(object_image, tmp_path / "b", GenerationParams(seed=12, **QUICK))
    reference = read_npz(first.npz)
    repeated = read_npz(again.npz)
    assert len(repeated) == len(reference)
    for a, b in zip(reference, repeated, strict=True):
        np.testing.assert_array_equal(a.vertices, b.vertices)
    different = read_npz(other.npz)
    assert len(different) != len(reference) or any(
        a.vertices.shape != b.vertices.shape or not np.allclose(a.vertices, b.vertices)
        for a, b in zip(reference, different, strict=True)
    )


def test_randomized_seed_is_recorded(tiny_pipeline, object_image: Path, tmp_path: Path) -> None:
    params = GenerationParams(steps=1, grid_res=16, randomize_seed=True)
    result = tiny_pipeline.generate(object_image, tmp_path, params)
    assert 0 <= result.seed < 2**31 - 1
    assert json.loads(result.result_json.read_text())["params"]["seed"] == result.seed


@pytest.mark.parametrize("stage", ["sample", "decode"])
def test_cancel_mid_stage(tiny_pipeline, object_image: Path, tmp_path: Path, stage: str) -> None:
    seen: list[Progress] = []

    def cancel_once_in_stage() -> bool:
        return any(event.stage == stage and event.step >= 1 for event in seen)

    params = GenerationParams(steps=8, grid_res=256, randomize_seed=False)
    with pytest.raises(Cancelled):
        tiny_pipeline.generate(object_image, tmp_path, params, seen.append, cancel_once_in_stage)
    steps_in_stage = [event.step for event in seen if event.stage == stage]
    # decode: 100 steps per level, moving chunk by chunk; stopped within the first level
    assert steps_in_stage and max(steps_in_stage) < (8 if stage == "sample" else 100)
    assert "export" not in {event.stage for event in seen}


def test_a_fully_transparent_image_is_refused(tiny_pipeline, tmp_path: Path) -> None:
    from PIL import Image

    empty = tmp_path / "empty.png"
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(empty)
    with pytest.raises(BadInputError, match="transparent"):
        tiny_pipeline.generate(empty, tmp_path / "out", GenerationParams(**QUICK))


def test_a_compiled_dit_samples_what_the_eager_one_does(
    tiny_pipeline: PartPackerPipeline,
    tiny_settings: PipelineSettings,
    object_image: Path,
    tmp_path: Path,
) -> None:
    tiny_pipeline.load()
    eager = tiny_pipeline.models
    compiled = PartPackerPipeline(replace(tiny_settings, compile_dit=True), eager)
    assert compiled.models.dit is not eager.dit, "the caller's models stay as they were"
    with torch.no_grad():
        cond = eager.dinov2.condition(normalize_image(torch.rand(1, 3, 518, 518)))
    shape = (1, eager.dit.config.sequence_length, eager.dit.config.latent_dim)
    noise = initial_noise(0, shape)
    expected = sample(eager.dit, cond, noise, 3, 7.0)
    torch.testing.assert_close(sample(compiled.models.dit, cond, noise, 3, 7.0), expected)
    result = compiled.generate(object_image, tmp_path, GenerationParams(seed=11, **QUICK))
    assert len(read_npz(result.npz)) >= 2


def test_out_of_device_memory_is_a_clear_error_and_the_next_job_runs(
    tiny_pipeline: PartPackerPipeline,
    object_image: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def exhausted(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr("backend.pipeline.sample", exhausted)
    params = GenerationParams(seed=3, **QUICK)
    with pytest.raises(DeviceOutOfMemoryError) as caught:
        tiny_pipeline.generate(object_image, tmp_path / "a", params)
    assert caught.value.exit_code == 4
    assert "grid resolution" in caught.value.hint
    monkeypatch.undo()
    assert read_npz(tiny_pipeline.generate(object_image, tmp_path / "b", params).npz)


@pytest.mark.parametrize("low_memory", [True, False])
def test_low_memory_mode_has_one_network_on_the_device_at_a_time(
    tiny_settings: PipelineSettings, object_image: Path, tmp_path: Path, low_memory: bool
) -> None:
    pipeline = PartPackerPipeline(replace(tiny_settings, low_memory=low_memory))
    models = pipeline.load()
    moves: list[tuple[str, str, str]] = []
    stage: list[str] = ["before"]
    names = {id(getattr(models, name)): name for name in ("dinov2", "dit", "vae")}
    residency = pipeline.residency
    for method, device in (("arrive", str(residency.device)), ("leave", "cpu")):
        original = getattr(residency, method)

        def recorded(module, device=device, original=original):  # type: ignore[no-untyped-def]
            moves.append((stage[0], names[id(module)], device))
            return original(module)

        setattr(residency, method, recorded)
    params = GenerationParams(seed=5, **QUICK)
    pipeline.generate(
        object_image, tmp_path, params, on_progress=lambda event: stage.__setitem__(0, event.stage)
    )
    if not low_memory:
        assert moves == []
        return
    # Each network comes to the device for its stage and leaves for host memory after it.
    assert [name for _, name, _ in moves] == ["dinov2", "dinov2", "dit", "dit", "vae", "vae"]
    assert [stage for stage, _, _ in moves[1::2]] == ["condition", "sample", "decode"]
    assert {device for _, _, device in moves[1::2]} == {"cpu"}


def test_a_cancel_once_the_models_are_loaded_keeps_them_for_the_next_job(
    tiny_settings: PipelineSettings, object_image: Path, tmp_path: Path
) -> None:
    pipeline = PartPackerPipeline(tiny_settings)
    loaded = []

    def on_progress(event: Progress) -> None:
        if (event.stage, event.step, event.total) == ("load", 3, 3):
            loaded.append(event)

    with pytest.raises(Cancelled):
        pipeline.generate(
            object_image,
            tmp_path,
            GenerationParams(**QUICK),
            on_progress=on_progress,
            should_cancel=lambda: bool(loaded),
        )
    assert loaded and pipeline.loaded
