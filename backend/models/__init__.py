"""PartPacker's three networks, built from config dataclasses that use the official field names."""

from .dinov2 import DINOv2, DINOv2Config, normalize_image
from .dit import DiT, DiTConfig
from .vae import VAE, VAEConfig

__all__ = ["VAE", "DINOv2", "DINOv2Config", "DiT", "DiTConfig", "VAEConfig", "normalize_image"]
