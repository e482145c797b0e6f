"""A checkpoint's keys and shapes against the model's, and which known file it looks like."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import WeightsError
from .sources import DINOV2_REPO, DOWNLOAD_HINT

SHOWN = 5


@dataclass(frozen=True)
class KeyFamily:
    label: str
    markers: tuple[str, ...]
    """Substrings of keys that only this kind of checkpoint has."""


# Ordered: the transformers>=5 DINOv2 shares its embeddings with the hub layout, so it goes first.
KEY_FAMILIES = (
    KeyFamily("flow.pt (the PartPacker flow DiT)", ("dit.", "attn1.qkv_proj", "adaln_linear")),
    KeyFamily("vae.pt (the PartPacker VAE)", ("proj_up.", "decoder.", "perceiver", "attn_query.")),
    KeyFamily(
        "a DINOv2 file in the transformers>=5 module layout (q_proj/gate_proj names), not the "
        f"hub's model.safetensors from {DINOV2_REPO}",
        ("attention.q_proj", "mlp.gate_proj", "mlp.up_proj"),
    ),
    KeyFamily(
        f"model.safetensors (DINOv2 from {DINOV2_REPO})",
        ("embeddings.patch_embeddings", "attention.attention.query"),
    ),
)


def identify_checkpoint(keys: Iterable[str]) -> str | None:
    """Which of the known files these keys look like, by the family most of them belong to."""
    keys = list(keys)
    counts = {
        family.label: sum(any(marker in key for marker in family.markers) for key in keys)
        for family in KEY_FAMILIES
    }
    label, count = max(counts.items(), key=lambda item: item[1])
    return label if count else None


def check_state_dict(
    state: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Size | tuple[int, ...]],
    *,
    file: Path,
    what: str,
) -> None:
    """Keys and shapes must match exactly; the error says what differs and, when the file is
    another of the known checkpoints, which one it looks like."""
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    misshaped = [
        f"{key} {list(state[key].shape)} (expected {list(expected[key])})"
        for key in expected
        if key in state and tuple(state[key].shape) != tuple(expected[key])
    ]
    if not (missing or unexpected or misshaped):
        return
    problems = [
        f"{len(items)} {name}: {first_few(items)}"
        for name, items in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("with the wrong shape", misshaped),
        )
        if items
    ]
    message = f"{file} does not match the {what} weights: " + "; ".join(problems)
    looks_like = identify_checkpoint(state)
    if looks_like is not None and looks_like != what:
        message += f". This looks like {looks_like}"
    raise WeightsError(message, f"check which file is which; {DOWNLOAD_HINT}")


def first_few(items: list[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    return shown + (f", ... ({len(items) - SHOWN} more)" if len(items) > SHOWN else "")
