"""Device and precision: CUDA with bf16 first, then Apple MPS, then CPU with fp32."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import BadInputError

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")


@dataclass(frozen=True)
class Placement:
    device: torch.device
    dtype: torch.dtype

    def report(self) -> dict[str, object]:
        """What the worker's hello and `doctor` say about the device."""
        name, memory = "CPU", None
        if self.device.type == "cuda":
            properties = torch.cuda.get_device_properties(self.device)
            name, memory = properties.name, properties.total_memory
        elif self.device.type == "mps":
            name = "Apple GPU (MPS)"
        return {
            "device": str(self.device),
            "device_name": name,
            "dtype": str(self.dtype).removeprefix("torch."),
            "memory_total_bytes": memory,
        }


def mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def choose_placement(device: str = "auto") -> Placement:
    """`auto` picks CUDA (bf16), else MPS (bf16), else CPU (fp32)."""
    if device not in DEVICE_CHOICES:
        raise BadInputError(
            f"unknown device {device!r}", f"choose one of {', '.join(DEVICE_CHOICES)}"
        )
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "mps" if mps_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise BadInputError(
            "CUDA was requested but this PyTorch build sees no NVIDIA GPU",
            "install a CUDA build of PyTorch, check the driver with nvidia-smi, or choose auto/cpu",
        )
    if device == "mps" and not mps_available():
        raise BadInputError("Apple MPS was requested but is not available", "choose auto or cpu")
    chosen = torch.device("cuda:0" if device == "cuda" else device)
    return Placement(chosen, torch.float32 if chosen.type == "cpu" else torch.bfloat16)
