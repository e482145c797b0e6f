"""The part VAE's decoder: latent → hidden states → occupancy at query points (README §3.5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .config import config_from_dict
from .layers import CrossAttention, FeedForward, SelfAttention, layer_norm

POINT_DIM = 3


@dataclass(frozen=True)
class VAEConfig:
    """Official field names; the defaults are `vae.configs.part_woenc`."""

    hidden_dim: int = 1024
    num_heads: int = 16
    num_enc_layers: int = 0
    num_dec_layers: int = 24
    dec_hidden_dim: int = 1024
    dec_num_heads: int = 16
    qknorm: bool = True
    qknorm_type: str = "LayerNorm"
    salient_attn_mode: str = "dual"
    fourier_version: str = "v3"
    point_fourier_dim: int = 48
    query_hidden_dim: int = 1024
    query_num_heads: int = 16
    use_flash_query: bool = False
    latent_size: int = 4096
    latent_dim: int = 64

    def __post_init__(self) -> None:
        if self.fourier_version != "v3":
            raise ValueError(f"fourier_version {self.fourier_version!r} is not supported")
        if self.use_flash_query:
            raise ValueError("use_flash_query=True is not part of any released PartPacker model")
        if self.num_enc_layers:
            raise ValueError("encoder layers are not part of any released PartPacker model")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> VAEConfig:
        return config_from_dict(cls, values)

    @property
    def fourier_frequencies(self) -> int:
        return self.point_fourier_dim // (2 * POINT_DIM)

    @property
    def fourier_width(self) -> int:
        return self.point_fourier_dim + POINT_DIM


def fourier_encoding(points: torch.Tensor, num_frequencies: int) -> torch.Tensor:
    """Per axis (x, y, z): sin at 2^0…2^(F-1), then cos at the same; raw coordinates last."""
    frequencies = 2.0 ** torch.arange(num_frequencies, dtype=torch.float32, device=points.device)
    args = points.float()[..., None] * frequencies  # [..., 3, F]
    features = torch.cat([torch.sin(args), torch.cos(args)], dim=-1).flatten(-2)
    return torch.cat([features, points.float()], dim=-1)


class SelfAttentionBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, qk_norm: str | None) -> None:
        super().__init__()
        self.attn = SelfAttention(dim, num_heads, qk_norm)
        self.ff = FeedForward(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(layer_norm(x))
        return x + self.ff(layer_norm(x))


class CrossAttentionBlock(nn.Module):
    def __init__(self, dim: int, context_dim: int, num_heads: int, qk_norm: str | None) -> None:
        super().__init__()
        self.attn = CrossAttention(dim, context_dim, num_heads, qk_norm)
        self.ff = FeedForward(dim)

    def keys_values(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.attn.keys_values(layer_norm(context))

    def attend(self, x: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        x = x + self.attn.attend(layer_norm(x), keys, values)
        return x + self.ff(layer_norm(x))

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.attend(x, *self.keys_values(context))


@dataclass
class QueryContext:
    """Keys and values of the query cross-attention for one decoded latent."""

    keys: torch.Tensor
    values: torch.Tensor

    def select(self, index: int) -> QueryContext:
        """The context of one latent of a batch."""
        return QueryContext(self.keys[index : index + 1], self.values[index : index + 1])


ENCODER_PREFIXES = (
    "proj_input.",
    "perceiver.",
    "perceiver_dorases.",
    "norm_down.",
    "proj_down_mean.",
    "proj_down_std.",
)
"""The encoder's tensors in vae.pt: they turn a point cloud into a latent, which inference never
does, so they are skipped when the file is loaded (about 25M parameters at full size)."""


class VAE(nn.Module):
    """The decoder half of the part VAE: its state dict keys are those of `vae.pt` without the
    ENCODER_PREFIXES; every other key of the file must match."""

    skipped_checkpoint_prefixes = ENCODER_PREFIXES

    def __init__(self, config: VAEConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or VAEConfig()
        qk_norm = config.qknorm_type if config.qknorm else None
        self.proj_up = nn.Linear(config.latent_dim, config.dec_hidden_dim)
        self.decoder = nn.ModuleList(
            SelfAttentionBlock(config.dec_hidden_dim, config.dec_num_heads, qk_norm)
            for _ in range(config.num_dec_layers)
        )
        self.proj_query = nn.Linear(config.fourier_width, config.query_hidden_dim)
        self.attn_query = CrossAttentionBlock(
            config.query_hidden_dim, config.dec_hidden_dim, config.query_num_heads, qk_norm
        )
        self.norm_out = nn.LayerNorm(config.query_hidden_dim)
        self.proj_out = nn.Linear(config.query_hidden_dim, 1)

    @property
    def dtype(self) -> torch.dtype:
        return self.proj_up.weight.dtype

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """[B, latent_size, latent_dim] float → hidden states [B, latent_size, dec_hidden]."""
        x = self.proj_up(latent.to(self.dtype))
        for block in self.decoder:
            x = block(x)
        return x

    def query_context(self, hidden: torch.Tensor) -> QueryContext:
        return QueryContext(*self.attn_query.keys_values(hidden))

    def query_with_context(self, points: torch.Tensor, context: QueryContext) -> torch.Tensor:
        """Occupancy (positive = inside) as float32 [B, N, 1] at float32 points [B, N, 3]."""
        x = self.proj_query(
            fourier_encoding(points, self.config.fourier_frequencies).to(self.dtype)
        )
        x = self.attn_query.attend(x, context.keys, context.values)
        return self.proj_out(self.norm_out(x)).float()

    def query(self, points: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        return self.query_with_context(points, self.query_context(hidden))
