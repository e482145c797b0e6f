"""Tiny random-weight checkpoints in the official layout, standing in for the hub weights.

    python tests/tiny_weights.py OUT_DIR

writes OUT_DIR/flow.pt (keys `dit.*`), OUT_DIR/vae.pt (wrapped in {"model": ...}, encoder
tensors included), OUT_DIR/model.safetensors (DINOv2 hub layout) and OUT_DIR/model_config.json,
which the backend takes as `--model-config` (or PARTPACKER_MODEL_CONFIG).

The weights follow the reference fixtures' rule (every parameter random, nothing left at its
default), and the VAE is shaped like the reference's so that its occupancy field is smooth and
part of it is inside: a generation with these weights yields real, separate meshes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.decoding import linspace_points, vae_fields
from backend.models import (
    VAE,
    DINOv2,
    DINOv2Config,
    DiT,
    DiTConfig,
    VAEConfig,
    normalize_image,
)
from backend.models.vae import CrossAttentionBlock
from backend.sampling import initial_noise, sample

TINY_CONFIG = {
    "dit": {"hidden_dim": 64, "num_heads": 4, "num_layers": 2, "latent_size": 64, "latent_dim": 8},
    "vae": {
        "hidden_dim": 64,
        "num_heads": 4,
        "num_dec_layers": 2,
        "dec_hidden_dim": 64,
        "dec_num_heads": 4,
        "query_hidden_dim": 64,
        "query_num_heads": 4,
        "latent_size": 64,
        "latent_dim": 8,
    },
    "dinov2": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4},
}
INSIDE_FRACTION = 0.12
EMBEDDINGS = frozenset(["part_embed", "cls_token", "mask_token", "position_embeddings"])


def randomize(module: nn.Module, generator: torch.Generator) -> None:
    """The reference fixtures' rule: scaled normal weights, small biases, norms near one."""
    for name, parameter in module.named_parameters():
        shape, leaf = parameter.shape, name.rsplit(".", 1)[-1]
        noise = torch.randn(shape, generator=generator)
        if leaf == "lambda1":
            value = 0.5 + 0.2 * noise
        elif leaf == "bias":
            value = 0.1 * noise
        elif parameter.ndim == 1:
            value = 1 + 0.2 * noise
        elif leaf in EMBEDDINGS:
            value = 0.5 * noise
        else:
            value = noise / shape[1:].numel() ** 0.5
        with torch.no_grad():
            parameter.copy_(value)


def sampled_latents(dit: DiT, dino: DINOv2, generator: torch.Generator) -> list[torch.Tensor]:
    """Part latents as a generation makes them, from random images."""
    latents = []
    device = dit.proj_in.weight.device
    with torch.no_grad():
        for seed in range(2):
            image = torch.rand(1, 3, 518, 518, generator=generator).to(device)
            cond = dino.condition(normalize_image(image))
            shape = (1, dit.config.sequence_length, dit.config.latent_dim)
            noise = initial_noise(seed, shape, device)
            latents.extend(sample(dit, cond, noise, num_steps=4, cfg_scale=7.0).chunk(2, dim=1))
    return latents


def shape_vae_field(vae: VAE, latents: list[torch.Tensor]) -> None:
    """Smooth field with a real inside: damp high Fourier frequencies, quiet the latent's pull,
    widen the output, and set the bias so about INSIDE_FRACTION of space is inside."""
    frequencies = vae.config.fourier_frequencies
    with torch.no_grad():
        columns = torch.arange(vae.config.point_fourier_dim, device=vae.proj_query.weight.device)
        vae.proj_query.weight[:, columns] *= 0.3 ** (columns % frequencies).float()
        vae.attn_query.attn.out_proj.weight *= 0.1
        vae.proj_out.weight.mul_(10)
        vae.proj_out.bias.zero_()
        points = linspace_points(16, vae.proj_out.weight.device)
        values = torch.cat([vae_fields(vae, latent)[0](points) for latent in latents])
        vae.proj_out.bias.fill_(-values.quantile(1 - INSIDE_FRACTION).item())


def vae_encoder_state(config: VAEConfig, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Random tensors in the names and shapes of the encoder half that vae.pt carries and the
    backend skips (backend.models.vae.ENCODER_PREFIXES), so that test files have the real layout."""
    qk_norm = config.qknorm_type if config.qknorm else None
    dim = config.hidden_dim
    encoder = nn.Module()
    encoder.proj_input = nn.Linear(config.fourier_width, dim)
    encoder.perceiver = CrossAttentionBlock(dim, dim, config.num_heads, qk_norm)
    if config.salient_attn_mode == "dual":
        encoder.perceiver_dorases = CrossAttentionBlock(dim, dim, config.num_heads, qk_norm)
    encoder.norm_down = nn.LayerNorm(dim)
    encoder.proj_down_mean = nn.Linear(dim, config.latent_dim)
    encoder.proj_down_std = nn.Linear(dim, config.latent_dim)
    randomize(encoder, generator)
    return encoder.state_dict()


def build_tiny_models(seed: int = 0) -> tuple[DiT, VAE, DINOv2]:
    generator = torch.Generator().manual_seed(seed)
    dit = DiT(DiTConfig.from_dict(TINY_CONFIG["dit"]))
    vae = VAE(VAEConfig.from_dict(TINY_CONFIG["vae"]))
    dino = DINOv2(DINOv2Config.from_dict(TINY_CONFIG["dinov2"]))
    for module in (dit, vae, dino):
        randomize(module.eval(), generator)
    shape_vae_field(vae, sampled_latents(dit, dino, generator))
    return dit, vae, dino


def write_tiny_weights(folder: Path, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    dit, vae, dino = build_tiny_models(seed)
    torch.save({f"dit.{key}": value for key, value in dit.state_dict().items()}, folder / "flow.pt")
    encoder = vae_encoder_state(vae.config, torch.Generator().manual_seed(seed + 1))
    torch.save({"model": {**encoder, **vae.state_dict()}}, folder / "vae.pt")
    save_file(
        {key: value.contiguous() for key, value in dino.state_dict().items()},
        folder / "model.safetensors",
    )
    (folder / "model_config.json").write_text(json.dumps(TINY_CONFIG, indent=1))
    return folder


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(write_tiny_weights(Path(sys.argv[1])))
