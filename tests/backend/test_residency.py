"""Where the networks live between jobs: low-memory mode's one host copy, and the device's
cached memory given back after every job with the models kept.

On a machine without CUDA the device is the CPU itself, so moving to it and back copies nothing
whichever way it is done: there the tests show the bookkeeping (the same storage, the same
Parameter objects, nothing pinned); the CUDA test shows the real moves where CUDA is."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from backend.params import GenerationParams
from backend.pipeline import PartPackerPipeline, PipelineSettings
from backend.residency import Residency, release_cached_memory

QUICK = {"steps": 2, "grid_res": 32}


def small_network() -> nn.Module:
    """Parameters, a shared (tied) parameter and buffers (BatchNorm's running statistics)."""
    network = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 4))
    network[2].weight = network[0].weight
    return network.eval()


def storage(module: nn.Module) -> dict[str, int]:
    tensors = {**dict(module.named_parameters()), **dict(module.named_buffers())}
    return {name: tensor.data_ptr() for name, tensor in tensors.items()}


def test_visits_keep_the_network_on_its_one_host_copy() -> None:
    network = small_network()
    before = {key: value.clone() for key, value in network.state_dict().items()}
    parameters = list(network.parameters())
    residency = Residency(torch.device("cpu"), low_memory=True)
    with residency.visit(network):
        pass
    host = storage(network)
    for _ in range(2):
        with residency.visit(network):
            assert network[2].weight is network[0].weight
        assert storage(network) == host, "the network is back on its one host copy"
    assert list(network.parameters()) == parameters  # the same Parameter objects
    for key, value in network.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_the_host_copy_is_pinned_exactly_where_cuda_is() -> None:
    network = small_network()
    residency = Residency(torch.device("cpu"), low_memory=True)
    with residency.visit(network):
        pass
    assert {tensor.is_pinned() for tensor in network.parameters()} == {torch.cuda.is_available()}


def test_a_network_leaves_the_device_when_its_stage_fails() -> None:
    network = small_network()
    residency = Residency(torch.device("cpu"), low_memory=True)
    left: list[nn.Module] = []
    residency.leave = left.append  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="stage failed"), residency.visit(network):
        raise RuntimeError("stage failed")
    assert left == [network]


def test_without_low_memory_a_visit_leaves_the_network_alone() -> None:
    network = small_network()
    host = storage(network)
    residency = Residency(torch.device("cpu"), low_memory=False)
    with residency.visit(network):
        assert storage(network) == host
    assert residency.host == {}, "no host copy is made"


def test_releasing_cached_memory_off_cuda_does_not_start_cuda() -> None:
    release_cached_memory(torch.device("cpu"))
    assert not torch.cuda.is_initialized()


def test_every_job_gives_cached_memory_back_and_keeps_the_models(
    tiny_settings: PipelineSettings,
    object_image: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline = PartPackerPipeline(tiny_settings)
    models = pipeline.load()
    stages: list[str] = []
    released: list[tuple[str, torch.device]] = []

    def recorded(device: torch.device) -> None:
        released.append((stages[-1], device))
        release_cached_memory(device)

    monkeypatch.setattr("backend.pipeline.release_cached_memory", recorded)
    for job in range(2):
        pipeline.generate(
            object_image,
            tmp_path / str(job),
            GenerationParams(seed=job, **QUICK),
            on_progress=lambda event: stages.append(event.stage),
        )
        assert released[-1] == ("export", pipeline.placement.device)
    assert len(released) == 2, "once per job, after its last stage"
    assert pipeline.models is models


def test_low_memory_jobs_reuse_the_host_copy(
    tiny_settings: PipelineSettings, object_image: Path, tmp_path: Path
) -> None:
    pipeline = PartPackerPipeline(replace(tiny_settings, low_memory=True))
    models = pipeline.load()
    networks = (models.dinov2, models.dit, models.vae)
    pipeline.generate(object_image, tmp_path / "0", GenerationParams(seed=0, **QUICK))
    host = [storage(network) for network in networks]
    pipeline.generate(object_image, tmp_path / "1", GenerationParams(seed=1, **QUICK))
    assert [storage(network) for network in networks] == host


def test_unloading_drops_the_host_copies(
    tiny_settings: PipelineSettings, object_image: Path, tmp_path: Path
) -> None:
    """A later network must not be taken for an unloaded one (ids are reused)."""
    pipeline = PartPackerPipeline(replace(tiny_settings, low_memory=True))
    pipeline.generate(object_image, tmp_path / "0", GenerationParams(seed=0, **QUICK))
    assert len(pipeline.residency.host) == 3
    pipeline.unload()
    assert pipeline.residency.host == {}
    pipeline.generate(object_image, tmp_path / "1", GenerationParams(seed=0, **QUICK))
    assert pipeline.models is not None
    networks = (pipeline.models.dinov2, pipeline.models.dit, pipeline.models.vae)
    assert set(pipeline.residency.host) == {id(network) for network in networks}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_cuda_low_memory_jobs_use_one_pinned_host_copy_and_leave_no_cache(
    tiny_settings: PipelineSettings, object_image: Path, tmp_path: Path
) -> None:
    for low_memory in (True, False):
        settings = replace(tiny_settings, device="cuda", low_memory=low_memory)
        pipeline = PartPackerPipeline(settings)
        models = pipeline.load()
        hosts = []
        for job in range(2):
            output = tmp_path / f"{low_memory}-{job}"
            pipeline.generate(object_image, output, GenerationParams(seed=job, **QUICK))
            hosts.append(storage(models.dit))
            cached = torch.cuda.memory_reserved() - torch.cuda.memory_allocated()
            assert cached < 32 << 20, f"{cached} bytes still cached after the job"
        devices = {parameter.device.type for parameter in models.dit.parameters()}
        pinned = {parameter.is_pinned() for parameter in models.dit.parameters()}
        if low_memory:
            assert (devices, pinned) == ({"cpu"}, {True})
            assert hosts[0] == hosts[1], "the second job reused the first one's host copy"
        else:
            assert devices == {"cuda"}
