"""Finding the weight files in a local folder or the Hugging Face cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_checkpoints import (
    PARTPACKER_COMMIT,
    fill_folder,
    fill_hub_cache,
    flow_state,
)

from backend.errors import WeightsError
from backend.weights import (
    WeightFiles,
    resolve_weights,
)

# --- finding the files ---------------------------------------------------------------------------


@pytest.mark.parametrize("dinov2_name", ["model.safetensors", "dinov2-giant/model.safetensors"])
def test_local_folder(tmp_path: Path, dinov2_name: str) -> None:
    fill_folder(tmp_path, dinov2_name)
    files = resolve_weights(tmp_path)
    assert files == WeightFiles(tmp_path / "flow.pt", tmp_path / "vae.pt", tmp_path / dinov2_name)


def test_local_folder_with_missing_files_lists_them(tmp_path: Path) -> None:
    torch.save(flow_state(), tmp_path / "flow.pt")
    with pytest.raises(WeightsError) as caught:
        resolve_weights(tmp_path)
    message = caught.value.message
    assert "vae.pt" in message
    assert "model.safetensors" in message
    assert "flow.pt" not in message
    assert str(tmp_path) in message
    assert "python -m backend download" in caught.value.hint


def test_missing_local_folder(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="does not exist"):
        resolve_weights(tmp_path / "nowhere")


def test_hub_cache_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    expected = fill_hub_cache(tmp_path)
    assert resolve_weights(cache_dir=tmp_path) == expected
    assert resolve_weights(cache_dir=tmp_path, revision=PARTPACKER_COMMIT) == expected


def test_hub_cache_missing_files_are_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    expected = fill_hub_cache(tmp_path)
    expected.vae.unlink()
    with pytest.raises(WeightsError) as caught:
        resolve_weights(cache_dir=tmp_path)
    assert "vae.pt from nvidia/PartPacker" in caught.value.message
    assert "flow.pt" not in caught.value.message
    assert "HF_HUB_OFFLINE" in caught.value.hint
