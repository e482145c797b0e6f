"""Which PyTorch build suits this machine: CUDA for NVIDIA GPUs, PyPI's on macOS, else CPU."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

from ..child_process import NO_CONSOLE_WINDOW

TORCH_INDEX = "https://download.pytorch.org/whl"
# (driver's highest CUDA version, wheel tag): the newest tag the driver can run is chosen.
CUDA_TAGS = (
    ((13, 0), "cu130"),
    ((12, 8), "cu128"),
    ((12, 6), "cu126"),
    ((12, 4), "cu124"),
    ((12, 1), "cu121"),
    ((11, 8), "cu118"),
)


@dataclass(frozen=True)
class TorchBuild:
    kind: str
    """"cuda", "mps" or "cpu"."""
    index_url: str | None
    """The package index holding this build; None: the default index (PyPI)."""
    reason: str


def detect_torch_build(system: str) -> TorchBuild:
    return choose_torch_build(system, nvidia_cuda_version())


def choose_torch_build(system: str, cuda_version: tuple[int, int] | None) -> TorchBuild:
    if system == "Darwin":
        return TorchBuild("mps", None, "macOS: PyTorch from PyPI uses the Apple GPU (MPS)")
    if cuda_version is not None:
        tag = next((tag for minimum, tag in CUDA_TAGS if cuda_version >= minimum), None)
        driver = f"{cuda_version[0]}.{cuda_version[1]}"
        if tag is not None:
            return TorchBuild("cuda", f"{TORCH_INDEX}/{tag}", f"NVIDIA driver for CUDA {driver}")
        return TorchBuild(
            "cpu", f"{TORCH_INDEX}/cpu", f"NVIDIA driver for CUDA {driver} is too old: CPU only"
        )
    return TorchBuild("cpu", f"{TORCH_INDEX}/cpu", "no NVIDIA GPU found (nvidia-smi): CPU only")


def nvidia_cuda_version() -> tuple[int, int] | None:
    """The highest CUDA version the NVIDIA driver supports, as nvidia-smi reports it."""
    command = shutil.which("nvidia-smi")
    if command is None:
        return None
    try:
        completed = subprocess.run(
            [command], capture_output=True, text=True, timeout=30, creationflags=NO_CONSOLE_WINDOW
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_cuda_version(completed.stdout) if completed.returncode == 0 else None


def parse_cuda_version(nvidia_smi_output: str) -> tuple[int, int] | None:
    match = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", nvidia_smi_output)
    return (int(match[1]), int(match[2])) if match else None
