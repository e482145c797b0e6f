"""Batch: every image of a folder, one after another, the results on a grid."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import bpy

from ..image_input import READABLE_SUFFIXES, ImageInputError
from .sequence import JobSequence, SequenceItem, spacing


def folder_images(folder: Path) -> list[Path]:
    """The folder's image files (by suffix), in name order. Raises ImageInputError."""
    folder = Path(bpy.path.abspath(str(folder)))
    if not folder.is_dir():
        raise ImageInputError(f"the folder {folder} does not exist", "pick a folder of images")
    images = sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in READABLE_SUFFIXES),
        key=lambda p: p.name.lower(),
    )
    if not images:
        raise ImageInputError(
            f"the folder {folder} holds no images", f"use one of {', '.join(READABLE_SUFFIXES)}"
        )
    return images


def batch_sequence(
    context: bpy.types.Context, folder: Path, overrides: dict[str, Any]
) -> JobSequence:
    images = folder_images(folder)
    columns = math.ceil(math.sqrt(len(images)))
    step = spacing(context, overrides)
    items = [
        SequenceItem(
            image.name,
            {**overrides, "image_path": str(image)},
            ((index % columns) * step, -(index // columns) * step, 0.0),
        )
        for index, image in enumerate(images)
    ]
    return JobSequence("batch", items)
