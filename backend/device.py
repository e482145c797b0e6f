"""Device and precision: CUDA with bf16 first, then Apple MPS, then CPU with fp32."""

from __future__ import annotations

import platform
import re
from dataclasses import dataclass

import torch
from torch.nn.attention import SDPBackend

from .errors import BadInputError

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")

MPS_BF16_MACOS = (14, 0)
"""Apple's GPU runs bfloat16 from macOS 14 (Sonoma) on."""


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
    """`auto` picks CUDA, else MPS, else CPU (fp32); on a GPU bf16 where it runs natively
    (`cuda_dtype`, `mps_dtype`), else float16."""
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
    if chosen.type == "cuda":
        return Placement(
            chosen, cuda_dtype(torch.cuda.is_bf16_supported(including_emulation=False))
        )
    if chosen.type == "mps":
        return Placement(chosen, mps_dtype(parse_macos_version(platform.mac_ver()[0])))
    return Placement(chosen, torch.float32)


def cuda_dtype(bf16_supported: bool) -> torch.dtype:
    """bf16 as the demo runs, where the GPU computes it natively (Ampere and later); float16
    before (emulated bf16 is slow): on the reference fixtures float16 is 8x closer to float32
    than bf16 (tiny DiT 0.003 against 0.026, VAE prediction 0.036 against 0.19), within the
    reference's bf16 tolerances."""
    return torch.bfloat16 if bf16_supported else torch.float16


def parse_macos_version(release: str) -> tuple[int, ...] | None:
    """`platform.mac_ver()[0]` as (major, minor, patch): "14.2.1" → (14, 2, 1), "15" →
    (15, 0, 0); None off macOS (empty) or unreadable."""
    match = re.fullmatch(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", release.strip())
    if match is None:
        return None
    return tuple(int(part or 0) for part in match.groups())


def mps_dtype(macos: tuple[int, ...] | None) -> torch.dtype:
    """bf16 on macOS 14 and later; float16 before, or when the version is unknown."""
    return torch.bfloat16 if macos is not None and macos >= MPS_BF16_MACOS else torch.float16


def attention_kernel(placement: Placement, head_dim: int) -> str:
    """The kernel PyTorch's scaled_dot_product_attention selects for our attention (no mask, no
    dropout, (batch, tokens, heads, head_dim) memory seen as (batch, heads, tokens, head_dim))
    of this head size in the placement's dtype on its device: "flash_attention",
    "cudnn_attention", "efficient_attention" or "math"; "unknown" where torch does not say."""
    choose = getattr(torch, "_fused_sdp_choice", None)
    if choose is None:
        return "unknown"
    probe = torch.zeros(1, 16, 2, head_dim, dtype=placement.dtype, device=placement.device)
    probe = probe.transpose(1, 2)
    try:
        return SDPBackend(choose(probe, probe, probe)).name.lower()
    except (RuntimeError, ValueError):
        return "unknown"


def attention_kernels(placement: Placement, head_dims: dict[str, int]) -> dict[str, str]:
    """`attention_kernel` for each network's head size."""
    return {name: attention_kernel(placement, head_dim) for name, head_dim in head_dims.items()}
