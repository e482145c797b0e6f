"""A replica whose first job runs out of device memory, as a GPU's would: the sampler raises
PyTorch's own torch.OutOfMemoryError inside the replica's process (the CPU allocator of this
machine raises a plain RuntimeError instead, so the error is raised where the sampler would
have allocated). Imported by name in the replica, which finds it through PYTHONPATH."""

from __future__ import annotations

import torch

import backend.pipeline
from backend.fleet.deployment import PipelineReplica
from backend.pipeline import PipelineSettings


class ExhaustedReplica(PipelineReplica):
    def __init__(self, settings: PipelineSettings) -> None:
        super().__init__(settings)
        sample = backend.pipeline.sample
        calls: list[None] = []

        def sample_out_of_memory_once(*args, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(None)
            if len(calls) == 1:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
            return sample(*args, **kwargs)

        backend.pipeline.sample = sample_out_of_memory_once
