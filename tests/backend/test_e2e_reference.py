"""Image → condition → sampling → per-part VAE grids, against the official end-to-end run."""

from __future__ import annotations

import torch
from reference import config, tensors, tiny_dinov2, tiny_dit, tiny_vae

from backend.decoding import decode_grid
from backend.models import normalize_image
from backend.sampling import initial_noise, sample

FP32 = {"atol": 1e-4, "rtol": 1e-4}


@torch.no_grad()
def test_image_to_both_part_grids() -> None:
    ref = tensors("e2e/e2e_fp32.safetensors")
    settings = config("e2e/e2e_fp32.json")
    image = tensors("dinov2/forward_fp32.safetensors")["image_uint8"].float() / 255

    cond = tiny_dinov2().condition(normalize_image(image))
    torch.testing.assert_close(cond, ref["cond"], **FP32)

    noise = initial_noise(settings["noise_seed_torch_generator"], tuple(ref["x0"].shape))
    assert torch.equal(noise, ref["x0"])
    latent = sample(tiny_dit(), cond, noise, settings["num_steps"], settings["cfg_scale"])
    torch.testing.assert_close(latent, ref["final_latent"], **FP32)

    vae = tiny_vae()
    for part, part_latent in enumerate(latent.chunk(2, dim=1)):
        hidden = vae.decode(part_latent)
        torch.testing.assert_close(hidden, ref[f"part{part}_hidden_states"], **FP32)
        grid = decode_grid(vae, part_latent, 16, mode="dense")
        torch.testing.assert_close(grid, ref[f"part{part}_dense_grid_r16"], **FP32)
