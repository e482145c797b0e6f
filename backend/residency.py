"""Where the networks live while a worker waits for jobs, and the device memory between jobs.

By default every network stays on the device once loaded. In low-memory mode each one lives in
host memory and visits the device only while its stage runs (DINOv2, then the DiT, then the
VAE), so that the device holds about one network at a time.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

import torch
from torch import nn


def release_cached_memory(device: torch.device) -> None:
    """Give the blocks PyTorch's allocator keeps cached back to the driver, for Blender and other
    programs; tensors still in use (the loaded models) stay. Nothing to do off CUDA."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


Slot = tuple[nn.Module, str, bool]
"""A tensor's place: (owning module, attribute name, whether it is a parameter)."""


class Residency:
    """In low-memory mode each network's tensors get one host copy, made on its first visit and
    pinned where CUDA is (so that copies to the GPU are fast and asynchronous). A visit copies
    them to the device; leaving points the network back at its host copy, so nothing is copied
    back and the device copy is freed. Otherwise a visit does nothing."""

    def __init__(self, device: torch.device, low_memory: bool) -> None:
        self.device = device
        self.low_memory = low_memory
        self.host: dict[int, list[tuple[Slot, torch.Tensor]]] = {}

    @property
    def home(self) -> torch.device:
        """Where the networks are loaded to."""
        return torch.device("cpu") if self.low_memory else self.device

    @contextlib.contextmanager
    def visit(self, module: nn.Module) -> Iterator[None]:
        """In low-memory mode, `module` is on the device only inside this block (and leaves it
        whatever happens there); otherwise it stays where it was loaded, on the device."""
        if not self.low_memory:
            yield
            return
        try:
            self.arrive(module)  # an out-of-memory here leaves nothing behind either
            yield
        finally:
            self.leave(module)
            release_cached_memory(self.device)

    def arrive(self, module: nn.Module) -> None:
        for slot, host in self.host_copies(module):
            _place(slot, host.to(self.device, non_blocking=True))

    def leave(self, module: nn.Module) -> None:
        for slot, host in self.host_copies(module):
            _place(slot, host)

    def forget(self) -> None:
        """Drop the host copies, once the networks they belong to are unloaded."""
        self.host.clear()

    def host_copies(self, module: nn.Module) -> list[tuple[Slot, torch.Tensor]]:
        if id(module) not in self.host:
            pin = torch.cuda.is_available()
            self.host[id(module)] = [
                (slot, tensor.pin_memory() if pin else tensor) for slot, tensor in _tensors(module)
            ]
        return self.host[id(module)]


def _tensors(module: nn.Module) -> Iterator[tuple[Slot, torch.Tensor]]:
    """Every parameter (once: one shared by two layers is one Parameter) and every buffer."""
    seen: set[int] = set()
    for owner in module.modules():
        for name, parameter in owner._parameters.items():
            if parameter is not None and id(parameter) not in seen:
                seen.add(id(parameter))
                yield (owner, name, True), parameter.detach()
        for name, buffer in owner._buffers.items():
            if buffer is not None:
                yield (owner, name, False), buffer


def _place(slot: Slot, tensor: torch.Tensor) -> None:
    owner, name, is_parameter = slot
    if is_parameter:
        owner._parameters[name].data = tensor  # the same Parameter object, other storage
    else:
        owner._buffers[name] = tensor
