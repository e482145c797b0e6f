"""DINOv2 (ViT with SwiGLU and layer scale), read directly from the hub checkpoint layout of
`facebook/dinov2-giant` (README §1, §3.3). No transformers dependency."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .config import config_from_dict
from .layers import attention

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
COND_LAYER_NORM_EPS = 1e-5


@dataclass(frozen=True)
class DINOv2Config:
    """The hub config.json field names; the defaults are facebook/dinov2-giant."""

    hidden_size: int = 1536
    num_hidden_layers: int = 40
    num_attention_heads: int = 24
    patch_size: int = 14
    image_size: int = 518
    num_channels: int = 3
    mlp_ratio: int = 4
    use_swiglu_ffn: bool = True
    layer_norm_eps: float = 1e-6
    qkv_bias: bool = True

    def __post_init__(self) -> None:
        if not self.use_swiglu_ffn:
            raise ValueError("only the SwiGLU DINOv2 (ViT-g/14) is supported")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DINOv2Config:
        return config_from_dict(cls, values)

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def swiglu_hidden(self) -> int:
        """int(C·ratio·2/3) rounded up to a multiple of 8."""
        width = int(self.hidden_size * self.mlp_ratio * 2 / 3)
        return (width + 7) // 8 * 8


class PatchEmbeddings(nn.Module):
    def __init__(self, config: DINOv2Config) -> None:
        super().__init__()
        self.projection = nn.Conv2d(
            config.num_channels, config.hidden_size, config.patch_size, stride=config.patch_size
        )

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.projection(pixels).flatten(2).transpose(1, 2)


class Embeddings(nn.Module):
    def __init__(self, config: DINOv2Config) -> None:
        super().__init__()
        width = config.hidden_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.mask_token = nn.Parameter(torch.zeros(1, width))  # stored in the hub file, never used
        self.position_embeddings = nn.Parameter(torch.zeros(1, config.num_patches + 1, width))
        self.patch_embeddings = PatchEmbeddings(config)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embeddings(pixels.to(self.cls_token.dtype))
        cls = self.cls_token.expand(patches.shape[0], -1, -1)
        return torch.cat([cls, patches], dim=1) + self.position_embeddings


class SelfAttentionProjections(nn.Module):
    def __init__(self, width: int, bias: bool) -> None:
        super().__init__()
        self.query = nn.Linear(width, width, bias=bias)
        self.key = nn.Linear(width, width, bias=bias)
        self.value = nn.Linear(width, width, bias=bias)


class OutputProjection(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.dense = nn.Linear(width, width)


class Attention(nn.Module):
    def __init__(self, config: DINOv2Config) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.attention = SelfAttentionProjections(config.hidden_size, config.qkv_bias)
        self.output = OutputProjection(config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        projections = self.attention
        out = attention(
            projections.query(x), projections.key(x), projections.value(x), self.num_heads
        )
        return self.output.dense(out)


class LayerScale(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.lambda1 = nn.Parameter(torch.ones(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.lambda1


class SwiGLU(nn.Module):
    """`weights_in` holds the gate rows, then the up-projection rows."""

    def __init__(self, config: DINOv2Config) -> None:
        super().__init__()
        self.weights_in = nn.Linear(config.hidden_size, 2 * config.swiglu_hidden)
        self.weights_out = nn.Linear(config.swiglu_hidden, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.weights_in(x).chunk(2, dim=-1)
        return self.weights_out(F.silu(gate) * up)


class Layer(nn.Module):
    def __init__(self, config: DINOv2Config) -> None:
        super().__init__()
        width, eps = config.hidden_size, config.layer_norm_eps
        self.norm1 = nn.LayerNorm(width, eps=eps)
        self.attention = Attention(config)
        self.layer_scale1 = LayerScale(width)
        self.norm2 = nn.LayerNorm(width, eps=eps)
        self.mlp = SwiGLU(config)
        self.layer_scale2 = LayerScale(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.layer_scale1(self.attention(self.norm1(x)))
        return x + self.layer_scale2(self.mlp(self.norm2(x)))


class Encoder(nn.Module):
    def __init__(self, config: DINOv2Config) -> None:
        super().__init__()
        self.layer = nn.ModuleList(Layer(config) for _ in range(config.num_hidden_layers))


class DINOv2(nn.Module):
    """State dict keys are the hub checkpoint's (transformers 4.x layout)."""

    def __init__(self, config: DINOv2Config | None = None) -> None:
        super().__init__()
        self.config = config = config or DINOv2Config()
        self.embeddings = Embeddings(config)
        self.encoder = Encoder(config)
        # Stored in the hub file; PartPacker replaces this final norm with Identity.
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    @property
    def dtype(self) -> torch.dtype:
        return self.embeddings.cls_token.dtype

    def last_hidden_state(self, pixels: torch.Tensor) -> torch.Tensor:
        """Raw output of the last block (CLS first, then patches row-major), final norm skipped."""
        x = self.embeddings(pixels)
        for layer in self.encoder.layer:
            x = layer(x)
        return x

    def condition(self, pixels: torch.Tensor) -> torch.Tensor:
        """What the DiT sees: ImageNet-normalised pixels [B, 3, 518, 518] → features
        layer-normed without affine parameters in float32, cast to the model dtype."""
        features = self.last_hidden_state(pixels.to(self.dtype))
        normed = F.layer_norm(features.float(), features.shape[-1:], eps=COND_LAYER_NORM_EPS)
        return normed.to(self.dtype)


def normalize_image(image: torch.Tensor) -> torch.Tensor:
    """float32 RGB in [0, 1], [B, 3, H, W] → ImageNet-normalised, in float32."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=image.dtype, device=image.device)[:, None, None]
    std = torch.tensor(IMAGENET_STD, dtype=image.dtype, device=image.device)[:, None, None]
    return (image - mean) / std
