"""Building blocks shared by the DiT and the VAE (reference README §3.1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NORM_EPS = 1e-6


def layer_norm(x: torch.Tensor, eps: float = NORM_EPS) -> torch.Tensor:
    """Affine-free layer norm over the last dimension."""
    return F.layer_norm(x, x.shape[-1:], eps=eps)


class RMSNorm(nn.Module):
    """RMS norm whose rounding matches the official one: the statistic is float32, the normalised
    product is cast to the weight's dtype *before* the weight multiplies it."""

    def __init__(self, dim: int, eps: float = NORM_EPS) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean_square = x.float().pow(2).mean(-1, keepdim=True)
        return (x * torch.rsqrt(mean_square + self.eps)).to(self.weight.dtype) * self.weight


class AffineFreeLayerNorm(nn.Module):
    """The VAE's QK norm: a LayerNorm with no parameters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return layer_norm(x)


def make_qk_norm(kind: str | None, dim: int) -> nn.Module:
    """QK norm over the full width, applied before the split into heads."""
    if kind is None:
        return nn.Identity()
    if kind == "RMSNorm":
        return RMSNorm(dim)
    if kind == "LayerNorm":
        return AffineFreeLayerNorm()
    raise ValueError(f"unknown qknorm_type {kind!r} (expected 'RMSNorm' or 'LayerNorm')")


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num_heads: int) -> torch.Tensor:
    """softmax(q kᵀ/√D) v over `num_heads` heads; (B, N, H·D) in and out."""
    batch, q_len, width = q.shape
    head_dim = width // num_heads

    def heads(t: torch.Tensor) -> torch.Tensor:
        return t.view(batch, -1, num_heads, head_dim).transpose(1, 2)

    out = F.scaled_dot_product_attention(heads(q), heads(k), heads(v))
    return out.transpose(1, 2).reshape(batch, q_len, width)


class SelfAttention(nn.Module):
    """Fused qkv projection: q, k and v are consecutive blocks of its output."""

    def __init__(self, dim: int, num_heads: int, qk_norm: str | None) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv_proj = nn.Linear(dim, 3 * dim)
        self.out_proj = nn.Linear(dim, dim)
        self.q_norm = make_qk_norm(qk_norm, dim)
        self.k_norm = make_qk_norm(qk_norm, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv_proj(x).chunk(3, dim=-1)
        out = attention(self.q_norm(q), self.k_norm(k), v, self.num_heads)
        return self.out_proj(out)


class CrossAttention(nn.Module):
    def __init__(self, dim: int, context_dim: int, num_heads: int, qk_norm: str | None) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(context_dim, dim)
        self.v_proj = nn.Linear(context_dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.q_norm = make_qk_norm(qk_norm, dim)
        self.k_norm = make_qk_norm(qk_norm, dim)

    def keys_values(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The normalised keys and the values: they depend on the context only, so callers that
        attend to one context many times compute them once."""
        return self.k_norm(self.k_proj(context)), self.v_proj(context)

    def attend(self, x: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        q = self.q_norm(self.q_proj(x))
        return self.out_proj(attention(q, keys, values, self.num_heads))

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.attend(x, *self.keys_values(context))


class FeedForward(nn.Module):
    """Linear(C→4C), exact GELU, Linear(4C→C); keys `net.0` and `net.2`."""

    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, mult * dim), nn.GELU(), nn.Linear(mult * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
