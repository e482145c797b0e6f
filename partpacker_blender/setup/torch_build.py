"""Which PyTorch build suits this machine: CUDA for NVIDIA GPUs, PyPI's on Apple silicon (MPS),
else CPU; and none for Intel Macs, which PyTorch stopped building for. A plain function of the
machine's facts (machine.py). No bpy."""

from __future__ import annotations

from dataclasses import dataclass

from ..problems import Problem
from .machine import Machine

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
LAST_INTEL_MAC_TORCH = "2.2"
"""PyTorch's last release with macOS x86_64 wheels; the backend needs 2.4 or newer."""


class NoTorchBuild(Problem):
    """PyTorch publishes no build the backend can use on this machine."""


@dataclass(frozen=True)
class TorchBuild:
    kind: str
    """"cuda", "mps" or "cpu"."""
    index_url: str | None
    """The package index holding this build; None: the default index (PyPI)."""
    reason: str


def choose_torch_build(machine: Machine) -> TorchBuild:
    """Raises NoTorchBuild on an Intel Mac."""
    if machine.system == "Darwin":
        if machine.architecture != "arm64":
            raise NoTorchBuild(
                f"PyTorch has no builds for Intel Macs after version {LAST_INTEL_MAC_TORCH}, "
                "and the backend needs 2.4 or newer",
                "generate on a Mac with Apple silicon or a computer with an NVIDIA GPU "
                "(the backend's command line writes job folders: Output > Import Job Folder)",
            )
        return TorchBuild("mps", None, "Apple silicon: PyTorch from PyPI uses the GPU (MPS)")
    cuda = machine.cuda_version
    if cuda is not None:
        tag = next((tag for minimum, tag in CUDA_TAGS if cuda >= minimum), None)
        driver = f"{cuda[0]}.{cuda[1]}"
        if tag is not None:
            return TorchBuild("cuda", f"{TORCH_INDEX}/{tag}", f"NVIDIA driver for CUDA {driver}")
        return TorchBuild(
            "cpu", f"{TORCH_INDEX}/cpu", f"NVIDIA driver for CUDA {driver} is too old: CPU only"
        )
    return TorchBuild("cpu", f"{TORCH_INDEX}/cpu", "no NVIDIA GPU found (nvidia-smi): CPU only")
