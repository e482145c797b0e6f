"""The flow-matching DiT over the two packed part latents (reference README §3.2)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .config import config_from_dict
from .layers import CrossAttention, FeedForward, SelfAttention, layer_norm

TIMESTEP_FEATURES = 256

KeysValues = list[tuple[torch.Tensor, torch.Tensor]]
"""Every layer's cross-attention keys and values of one condition."""


@dataclass(frozen=True)
class DiTConfig:
    """Official field names; the defaults are the released app's configuration."""

    hidden_dim: int = 1536
    num_heads: int = 16
    num_layers: int = 24
    latent_size: int = 4096
    latent_dim: int = 64
    qknorm: bool = True
    qknorm_type: str = "RMSNorm"
    use_pos_embed: bool = False
    use_parts: bool = True
    part_embed_mode: str = "part2_only"

    def __post_init__(self) -> None:
        if self.use_pos_embed:
            raise ValueError("use_pos_embed=True is not part of any released PartPacker model")
        if self.use_parts and self.part_embed_mode != "part2_only":
            raise ValueError(f"part_embed_mode {self.part_embed_mode!r} is not supported")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DiTConfig:
        return config_from_dict(cls, values)

    @property
    def sequence_length(self) -> int:
        return self.latent_size * (2 if self.use_parts else 1)


def timestep_features(t: torch.Tensor, dim: int = TIMESTEP_FEATURES) -> torch.Tensor:
    """Sinusoidal features [cos, sin] of float32 timesteps, computed in float32."""
    half = dim // 2
    exponent = -math.log(10000) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    args = t.float()[:, None] * torch.exp(exponent)[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class TimestepEmbedding(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(TIMESTEP_FEATURES, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        dtype = next(self.mlp.parameters()).dtype
        return self.mlp(timestep_features(t).to(dtype))


class DiTBlock(nn.Module):
    """adaLN-modulated self-attention, plain cross-attention to the image, modulated MLP."""

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        dim = config.hidden_dim
        qk_norm = config.qknorm_type if config.qknorm else None
        self.attn1 = SelfAttention(dim, config.num_heads, qk_norm)
        self.attn2 = CrossAttention(dim, dim, config.num_heads, qk_norm)
        self.ff = FeedForward(dim)
        self.adaln_linear = nn.Linear(dim, 6 * dim)

    def forward(
        self, x: torch.Tensor, cond_kv: tuple[torch.Tensor, torch.Tensor], t_emb: torch.Tensor
    ) -> torch.Tensor:
        """`cond_kv`: this layer's cross-attention keys and values of the image condition."""
        modulation = self.adaln_linear(nn.functional.silu(t_emb))
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (
            chunk.unsqueeze(1) for chunk in modulation.chunk(6, dim=-1)
        )
        x = x + gate_msa * self.attn1(layer_norm(x) * (1 + scale_msa) + shift_msa)
        x = x + self.attn2.attend(layer_norm(x), *cond_kv)
        return x + gate_mlp * self.ff(layer_norm(x) * (1 + scale_mlp) + shift_mlp)


class DiT(nn.Module):
    """State dict keys are those of `flow.pt` without the `dit.` prefix."""

    def __init__(self, config: DiTConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or DiTConfig()
        if config.use_parts:
            self.part_embed = nn.Parameter(torch.zeros(1, config.hidden_dim))
        self.proj_in = nn.Linear(config.latent_dim, config.hidden_dim)
        self.timestep_embed = TimestepEmbedding(config.hidden_dim)
        self.layers = nn.ModuleList(DiTBlock(config) for _ in range(config.num_layers))
        self.proj_out = nn.Linear(config.hidden_dim, config.latent_dim)

    def embed_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """proj_in, then the part embedding on the second volume's tokens only."""
        h = self.proj_in(x)
        if not self.config.use_parts:
            return h
        first, second = h.split(h.shape[1] // 2, dim=1)
        return torch.cat([first, second + self.part_embed[0]], dim=1)

    def condition_keys_values(self, cond: torch.Tensor) -> KeysValues:
        """The cross-attention keys and values of `cond` for every layer. They depend on the
        condition only, so a sampler computes them once per job rather than at every step."""
        return [layer.attn2.keys_values(cond) for layer in self.layers]

    def forward(
        self,
        x: torch.Tensor,
        cond: torch.Tensor | None,
        t: torch.Tensor,
        cond_kv: KeysValues | None = None,
    ) -> torch.Tensor:
        """x: [B, N, latent_dim] in the model dtype; cond: [B, M, C]; t: float32 [B], 0-1000.
        With `cond_kv` (`condition_keys_values(cond)`, computed earlier), `cond` is not used."""
        if cond_kv is None:
            if cond is None:
                raise ValueError("the DiT needs the condition or its keys and values")
            cond_kv = self.condition_keys_values(cond)
        h = self.embed_tokens(x)
        t_emb = self.timestep_embed(t)
        for layer, layer_kv in zip(self.layers, cond_kv, strict=True):
            h = layer(h, layer_kv, t_emb)
        return self.proj_out(layer_norm(h))
