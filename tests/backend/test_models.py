"""The three networks against the official forward passes and the full-size key manifests."""

from __future__ import annotations

import pytest
import torch
from reference import manifest, tensors, tiny_dinov2, tiny_dit, tiny_vae

from backend.models import VAE, DINOv2, DiT, normalize_image
from backend.models.dit import timestep_features
from backend.models.vae import ENCODER_PREFIXES, fourier_encoding

FP32 = {"atol": 1e-4, "rtol": 1e-4}


def assert_close(actual: torch.Tensor, expected: torch.Tensor, **tolerance: float) -> None:
    torch.testing.assert_close(actual.float(), expected.float(), **(tolerance or FP32))


@torch.no_grad()
def test_dit_forward_fp32_matches_every_intermediate() -> None:
    dit, ref = tiny_dit(), tensors("dit/forward_fp32.safetensors")
    assert_close(timestep_features(ref["t"]), ref["t_freq"])
    assert_close(dit.timestep_embed(ref["t"]), ref["t_emb"])
    assert_close(dit.embed_tokens(ref["x"]), ref["h_in"])
    cond_kv = dit.condition_keys_values(ref["cond"])
    assert_close(dit.layers[0](ref["h_in"], cond_kv[0], ref["t_emb"]), ref["h_layer0"])
    assert_close(dit.layers[1](ref["h_layer0"], cond_kv[1], ref["t_emb"]), ref["h_layer1"])
    assert_close(dit(ref["x"], ref["cond"], ref["t"]), ref["out"])


@torch.no_grad()
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dit_with_precomputed_condition_keys_values_is_bitwise_the_same(dtype) -> None:
    dit, ref = tiny_dit().to(dtype), tensors("dit/forward_fp32.safetensors")
    x, cond = ref["x"].to(dtype), ref["cond"].to(dtype)
    cond_kv = dit.condition_keys_values(cond)
    assert torch.equal(dit(x, None, ref["t"], cond_kv), dit(x, cond, ref["t"]))
    with pytest.raises(ValueError, match="condition"):
        dit(x, None, ref["t"])


@torch.no_grad()
def test_dit_forward_bf16() -> None:
    dit, ref = tiny_dit().to(torch.bfloat16), tensors("dit/forward_bf16.safetensors")
    out = dit(ref["x"], ref["cond"], ref["t"])
    assert out.dtype == torch.bfloat16
    assert_close(out, ref["out"], atol=0.05, rtol=0)
    assert (out.float() - ref["out_fp32_same_inputs"]).abs().max() < 0.05


@torch.no_grad()
def test_vae_decode_fourier_and_query_fp32() -> None:
    vae, ref = tiny_vae(), tensors("vae/decode_query_fp32.safetensors")
    assert_close(vae.decode(ref["latent"]), ref["hidden_states"])
    assert_close(fourier_encoding(ref["points"], vae.config.fourier_frequencies), ref["fourier"])
    assert_close(vae.query(ref["points"], ref["hidden_states"]), ref["pred"])


@torch.no_grad()
def test_vae_bf16() -> None:
    vae, ref = tiny_vae().to(torch.bfloat16), tensors("vae/decode_query_bf16.safetensors")
    hidden = vae.decode(ref["latent"])
    assert hidden.dtype == torch.bfloat16
    assert_close(hidden, ref["hidden_states"], atol=0.05, rtol=0)
    encoded = fourier_encoding(ref["points"], vae.config.fourier_frequencies).to(torch.bfloat16)
    assert torch.equal(encoded, ref["fourier"])
    assert_close(vae.query(ref["points"], hidden), ref["pred"], atol=0.4, rtol=0)


@torch.no_grad()
def test_dinov2_last_hidden_state_and_condition() -> None:
    dino, ref = tiny_dinov2(), tensors("dinov2/forward_fp32.safetensors")
    pixels = (ref["image_uint8"].float() - 128) / 32
    assert_close(dino.last_hidden_state(pixels), ref["last_hidden_state_identity_final_norm"])
    assert_close(dino.condition(pixels), ref["cond_after_affine_free_layernorm"])


def test_imagenet_normalisation_matches_e2e_pixels() -> None:
    image = tensors("dinov2/forward_fp32.safetensors")["image_uint8"].float() / 255
    expected = tensors("e2e/e2e_fp32.safetensors")["normalized_image"]
    assert torch.equal(normalize_image(image)[:, :, :4, :4], expected)


def meta_state_shapes(module: torch.nn.Module) -> list[tuple[str, list[int]]]:
    return [(key, list(value.shape)) for key, value in module.state_dict().items()]


@pytest.mark.parametrize(
    ("model", "name", "entries", "prefix"),
    [
        (DiT, "dit_keys", "keys", "dit."),
        (VAE, "vae_keys", "keys", ""),
        (DINOv2, "dinov2_giant_keys", "hub_checkpoint_keys", ""),
    ],
)
def test_full_size_models_match_the_checkpoint_manifests(model, name, entries, prefix) -> None:
    with torch.device("meta"):
        module = model()
    skipped = ENCODER_PREFIXES if model is VAE else ()
    expected = [
        (entry["key"], entry["shape"])
        for entry in manifest(name)[entries]
        if not entry["key"].startswith(skipped)
    ]
    actual = [(prefix + key, shape) for key, shape in meta_state_shapes(module)]
    assert actual == expected
    total = "inference_params" if model is VAE else "total_params"
    assert sum(p.numel() for p in module.parameters()) == manifest(name)[total]


def test_the_vae_leaves_out_exactly_the_encoder() -> None:
    """The prefixes skipped are the manifest's encoder keys: every other key of vae.pt is one
    the decoder uses, and the encoder's ~25M parameters are not built at all."""
    vae_keys = manifest("vae_keys")
    used = tuple(vae_keys["inference_key_prefixes"])
    for entry in vae_keys["keys"]:
        assert entry["key"].startswith(used) != entry["key"].startswith(ENCODER_PREFIXES)
    skipped = vae_keys["total_params"] - vae_keys["inference_params"]
    assert 25_000_000 < skipped < 26_000_000
