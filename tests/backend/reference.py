"""Access to the reference vectors of the official implementation (`tests/reference/`, its
README.md describes them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from backend.models import VAE, DINOv2, DINOv2Config, DiT, DiTConfig, VAEConfig
from backend.models.vae import ENCODER_PREFIXES
from backend.weights import drop_skipped

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
TINY = REFERENCE / "tiny"


def tensors(relative: str) -> dict[str, torch.Tensor]:
    return load_file(TINY / relative)


def config(relative: str) -> dict[str, Any]:
    return json.loads((TINY / relative).read_text())


def manifest(name: str) -> dict[str, Any]:
    return json.loads((REFERENCE / "manifests" / f"{name}.json").read_text())


def tiny_dit() -> DiT:
    dit = DiT(DiTConfig.from_dict(config("dit/config.json")["kwargs"])).eval()
    state = tensors("dit/state_dict.safetensors")
    dit.load_state_dict({key.removeprefix("dit."): value for key, value in state.items()})
    return dit


def tiny_vae() -> VAE:
    vae = VAE(VAEConfig.from_dict(config("vae/config.json")["config"])).eval()
    state = drop_skipped(tensors("vae/state_dict.safetensors"), ENCODER_PREFIXES)
    vae.load_state_dict(state, strict=True)
    return vae


def tiny_dinov2() -> DINOv2:
    dino = DINOv2(DINOv2Config.from_dict(config("dinov2/config.json")["config"])).eval()
    dino.load_state_dict(tensors("dinov2/state_dict.safetensors"), strict=True)
    return dino


def analytic_occupancy(points: torch.Tensor) -> torch.Tensor:
    """The sphere+box field of README §3.7, written with the same torch ops."""
    sphere = 0.43 - torch.linalg.vector_norm(points - torch.tensor([-0.29, 0.11, 0.045]), dim=-1)
    offset = (points - torch.tensor([0.34, -0.13, 0.015])).abs() - torch.tensor([0.29, 0.39, 0.22])
    outside = torch.linalg.vector_norm(offset.clamp(min=0), dim=-1)
    box = -(outside + offset.max(dim=-1).values.clamp(max=0))
    return (8 * torch.maximum(sphere, box)).clamp(-1, 1)
