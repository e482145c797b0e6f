"""The device and precision decisions, including those for GPUs this machine does not have."""

from __future__ import annotations

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from backend import device
from backend.device import (
    MPS_BF16_MACOS,
    Placement,
    attention_kernel,
    attention_kernels,
    choose_placement,
    cuda_dtype,
    mps_dtype,
    parse_macos_version,
)
from backend.errors import BadInputError


@pytest.mark.parametrize(
    ("release", "version"),
    [
        ("14.2.1", (14, 2, 1)),
        ("13.6", (13, 6, 0)),
        ("15", (15, 0, 0)),
        ("10.16", (10, 16, 0)),
        (" 14.0 ", (14, 0, 0)),
        ("", None),
        ("fourteen", None),
        ("14.2.1.9", None),
    ],
)
def test_macos_release_strings_are_parsed(release: str, version) -> None:
    assert parse_macos_version(release) == version


def test_bf16_on_mps_from_macos_14_float16_before_or_when_unknown() -> None:
    assert MPS_BF16_MACOS == (14, 0)
    assert mps_dtype((14, 0, 0)) == mps_dtype((15, 1, 0)) == torch.bfloat16
    assert mps_dtype((13, 6, 9)) == mps_dtype((10, 16, 0)) == torch.float16
    assert mps_dtype(None) == torch.float16
    assert mps_dtype(parse_macos_version("14")) == torch.bfloat16


def test_bf16_on_cuda_only_where_it_is_native() -> None:
    assert cuda_dtype(bf16_supported=True) == torch.bfloat16
    assert cuda_dtype(bf16_supported=False) == torch.float16


def test_float16_before_ampere_is_within_the_reference_bf16_tolerances() -> None:
    """The reason for float16, not float32, where bf16 is not native: on the reference fixtures
    it stays closer to float32 than bf16, whose tolerances (README §4) the tests use."""
    from reference import tensors, tiny_dit

    ref = tensors("dit/forward_fp32.safetensors")
    gaps = {}
    for dtype in (torch.bfloat16, torch.float16):
        dit = tiny_dit().to(dtype)
        with torch.no_grad():
            out = dit(ref["x"].to(dtype), ref["cond"].to(dtype), ref["t"])
        gaps[dtype] = (out.float() - ref["out"]).abs().max().item()
    assert gaps[torch.float16] < gaps[torch.bfloat16] < 0.05


def test_placement_on_a_gpu_follows_the_decisions(monkeypatch) -> None:
    """The wiring of choose_placement, with the GPU queries answered as on such machines."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    native: list[bool] = []

    def is_bf16_supported(including_emulation: bool = True) -> bool:
        native.append(not including_emulation)
        return False

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    assert choose_placement("cuda") == Placement(torch.device("cuda:0"), torch.float16)
    assert native == [True], "emulated bf16 (pre-Ampere) must not count"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device, "mps_available", lambda: True)
    for release, dtype in (("13.6.1", torch.float16), ("14.1", torch.bfloat16)):
        monkeypatch.setattr(device.platform, "mac_ver", lambda release=release: (release, "", ""))
        assert choose_placement("auto") == Placement(torch.device("mps"), dtype)


def test_cpu_placement_is_float32_and_unknown_devices_are_refused() -> None:
    assert choose_placement("cpu") == Placement(torch.device("cpu"), torch.float32)
    with pytest.raises(BadInputError, match="unknown device"):
        choose_placement("tpu")


def test_the_reported_attention_kernel_is_the_one_torch_selects() -> None:
    cpu = choose_placement("cpu")
    assert attention_kernel(cpu, 64) == "flash_attention"  # torch's CPU flash kernel
    with sdpa_kernel([SDPBackend.MATH]):
        assert attention_kernels(cpu, {"dit": 96, "vae": 64}) == {"dit": "math", "vae": "math"}
