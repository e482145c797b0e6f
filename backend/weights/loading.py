"""Assigning a checkpoint's tensors to a model built on the meta device."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from .checking import check_state_dict, identify_checkpoint
from .integrity import IntegrityRecord, verify_integrity
from .reading import read_state_dict

log = logging.getLogger(__name__)


def load_weights(
    module: torch.nn.Module,
    path: Path,
    *,
    prefix: str = "",
    skipped: tuple[str, ...] = (),
    dtype: torch.dtype,
    device: torch.device | str,
    record: IntegrityRecord | None = None,
) -> torch.nn.Module:
    """Fill a module built on the meta device from `path`; returns it in eval mode.

    The file's bytes are checked first (integrity.py; `record`: where checked files are
    remembered, default: the user's record). `prefix` is stripped from the file's keys (flow.pt
    stores the DiT under "dit."); keys starting with one of `skipped` are dropped (the VAE's
    encoder), every other key must match the module's exactly."""
    verify_integrity(Path(path), record)
    expected = {key: value.shape for key, value in module.state_dict().items()}
    what = identify_checkpoint(prefix + key for key in expected) or type(module).__name__
    state = drop_skipped(strip_prefix(read_state_dict(path), prefix), skipped)
    check_state_dict(state, expected, file=Path(path), what=what)
    module.load_state_dict(convert_state_dict(state, dtype, device), strict=True, assign=True)
    log.info("loaded %s from %s (%s on %s)", what, path, dtype, device)
    return module.eval()


def strip_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Keys without the prefix stay as they are, so a wrong file still shows its own names."""
    if not prefix:
        return state
    return {key.removeprefix(prefix): value for key, value in state.items()}


def drop_skipped(
    state: dict[str, torch.Tensor], skipped: tuple[str, ...]
) -> dict[str, torch.Tensor]:
    """The state without the keys under the `skipped` prefixes (tensors the model leaves out)."""
    if not skipped:
        return state
    return {key: value for key, value in state.items() if not key.startswith(skipped)}


def convert_state_dict(
    state: dict[str, torch.Tensor], dtype: torch.dtype, device: torch.device | str
) -> dict[str, torch.Tensor]:
    """Every tensor to `dtype` on `device`. Empties `state` as it goes, so the file's copy of a
    tensor is freed once its converted copy exists."""
    converted = {}
    for key in list(state):
        converted[key] = state.pop(key).to(device=device, dtype=dtype)
    return converted
