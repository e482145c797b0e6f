"""Clean-room PyTorch inference for NVIDIA PartPacker: one image in, separate 3D parts out."""

__version__ = "0.1.0"
