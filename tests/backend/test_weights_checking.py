"""Keys and shapes against the model's, and which known file a wrong one looks like."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from reference import manifest
from safetensors.torch import save_file
from tiny_checkpoints import (
    TinyDINOv2,
    TinyFlow,
    TinyVAE,
    flow_state,
    on_meta,
    random_state,
)

from backend.errors import WeightsError
from backend.weights import (
    check_state_dict,
    identify_checkpoint,
    load_weights,
)

# --- keys and shapes -----------------------------------------------------------------------------


def test_vae_given_as_flow_is_recognised(tmp_path: Path) -> None:
    path = tmp_path / "flow.pt"
    torch.save({"model": random_state(TinyVAE)}, path)
    with pytest.raises(WeightsError) as caught:
        load_weights(on_meta(TinyFlow), path, prefix="dit.", dtype=torch.float32, device="cpu")
    message = caught.value.message
    assert str(path) in message
    assert "looks like vae.pt" in message
    assert "proj_up.weight" in message  # unexpected
    assert "layers.0.attn1.qkv_proj.weight" in message  # missing


def test_flow_given_as_vae_is_recognised(tmp_path: Path) -> None:
    path = tmp_path / "vae.pt"
    torch.save(flow_state(), path)
    with pytest.raises(WeightsError, match=re.escape("looks like flow.pt")):
        load_weights(on_meta(TinyVAE), path, dtype=torch.float32, device="cpu")


def test_dinov2_given_as_flow_is_recognised(tmp_path: Path) -> None:
    path = tmp_path / "flow.pt"
    save_file(random_state(TinyDINOv2), path)
    with pytest.raises(WeightsError, match=re.escape("looks like model.safetensors")):
        load_weights(on_meta(TinyFlow), path, prefix="dit.", dtype=torch.float32, device="cpu")


def test_missing_unexpected_and_misshaped_keys_are_listed(tmp_path: Path) -> None:
    state = flow_state()
    del state["dit.proj_out.bias"]
    state["dit.layers.5.ff.weight"] = torch.ones(3)
    state["dit.proj_in.weight"] = torch.ones(8, 5)
    path = tmp_path / "flow.pt"
    torch.save(state, path)
    with pytest.raises(WeightsError) as caught:
        load_weights(on_meta(TinyFlow), path, prefix="dit.", dtype=torch.float32, device="cpu")
    message = caught.value.message
    assert str(path) in message
    assert "1 missing: proj_out.bias" in message
    assert "1 unexpected: layers.5.ff.weight" in message
    assert "proj_in.weight [8, 5] (expected [8, 4])" in message
    assert "looks like" not in message  # it is a flow checkpoint, just not this one


def test_long_key_lists_are_cut_with_a_count() -> None:
    expected = {f"layers.{i}.weight": (2,) for i in range(12)}
    with pytest.raises(WeightsError) as caught:
        check_state_dict({}, expected, file=Path("x.pt"), what="test")
    message = caught.value.message
    assert "12 missing" in message
    assert "layers.4.weight, ... (7 more)" in message
    assert "layers.5.weight" not in message


def test_matching_state_passes_the_check() -> None:
    state = random_state(TinyVAE)
    check_state_dict(state, {k: v.shape for k, v in state.items()}, file=Path("v"), what="v")


def manifest_state(entries: list[dict], key: str = "key") -> dict[str, torch.Tensor]:
    return {entry[key]: torch.empty(entry["shape"], device="meta") for entry in entries}


def test_full_size_manifests_are_identified() -> None:
    dit = manifest("dit_keys")["keys"]
    vae = manifest("vae_keys")["keys"]
    dinov2 = manifest("dinov2_giant_keys")
    assert identify_checkpoint(entry["key"] for entry in dit).startswith("flow.pt")
    assert identify_checkpoint(entry["key"] for entry in vae).startswith("vae.pt")
    hub_keys = (entry["key"] for entry in dinov2["hub_checkpoint_keys"])
    assert identify_checkpoint(hub_keys).startswith("model.safetensors")
    module_keys = [entry["key"] for entry in dinov2["transformers5_module_keys"]]
    assert "transformers>=5" in identify_checkpoint(module_keys)


def test_full_size_mixups_are_named() -> None:
    dinov2 = manifest("dinov2_giant_keys")
    vae_expected = {e["key"]: tuple(e["shape"]) for e in manifest("vae_keys")["keys"]}
    hub_expected = {e["key"]: tuple(e["shape"]) for e in dinov2["hub_checkpoint_keys"]}
    with pytest.raises(WeightsError, match=r"244 missing.*looks like flow\.pt"):
        check_state_dict(
            manifest_state(manifest("dit_keys")["keys"]),
            vae_expected,
            file=Path("vae.pt"),
            what="vae.pt",
        )
    with pytest.raises(WeightsError, match="transformers>=5"):
        check_state_dict(
            manifest_state(dinov2["transformers5_module_keys"]),
            hub_expected,
            file=Path("model.safetensors"),
            what="DINOv2",
        )
