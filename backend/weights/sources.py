"""What the three weight files are: their hub repositories, names, sizes and local names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PARTPACKER_REPO = "nvidia/PartPacker"
DINOV2_REPO = "facebook/dinov2-giant"
DOWNLOAD_HINT = "run `python -m backend download`, or point --weights-dir at a folder with them"

# Approximate sizes: parameter counts from reference/manifests × 4 bytes (fp32); pickle and
# safetensors headers add well under 1 MB.
FLOW_BYTES = 1_249_511_488 * 4  # about 5.0 GB: the 1.25B-parameter flow DiT
VAE_BYTES = 340_296_833 * 4  # about 1.4 GB: the 0.34B-parameter VAE (encoder included)
DINOV2_BYTES = 1_136_480_768 * 4  # about 4.5 GB: DINOv2 ViT-g/14, 1.14B parameters


@dataclass(frozen=True)
class WeightSource:
    field: str
    """The `WeightFiles` attribute this file fills."""
    repo_id: str
    filename: str
    approx_bytes: int
    description: str
    local_names: tuple[str, ...]
    """Paths accepted inside a local weights folder, in the order they are tried."""
    follows_revision: bool
    """Whether `--revision` applies: it names a PartPacker commit, not a DINOv2 one."""


WEIGHT_SOURCES: tuple[WeightSource, ...] = (
    WeightSource(
        "flow",
        PARTPACKER_REPO,
        "flow.pt",
        FLOW_BYTES,
        "flow-matching DiT (keys dit.*)",
        ("flow.pt",),
        True,
    ),
    WeightSource(
        "vae",
        PARTPACKER_REPO,
        "vae.pt",
        VAE_BYTES,
        "part VAE: latents to occupancy",
        ("vae.pt",),
        True,
    ),
    WeightSource(
        "dinov2",
        DINOV2_REPO,
        "model.safetensors",
        DINOV2_BYTES,
        "DINOv2 ViT-g/14 image encoder",
        ("model.safetensors", "dinov2-giant/model.safetensors"),
        False,
    ),
)


@dataclass(frozen=True)
class WeightFiles:
    flow: Path
    vae: Path
    dinov2: Path


def describe(source: WeightSource) -> str:
    return f"{source.filename} from {source.repo_id}"


def revision_for(source: WeightSource, revision: str | None) -> str | None:
    return revision if source.follows_revision else None
