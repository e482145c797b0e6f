"""The input image as a file the backend can read: a path checked up front, or a datablock."""

from __future__ import annotations

import re
from pathlib import Path

import bpy

from .problems import Problem

READABLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tga", ".tif", ".tiff")
"""What the backend's image reader (Pillow) opens."""


class ImageInputError(Problem):
    """No image, a missing file or a kind of file the backend cannot read."""


def checked_image_file(path_text: str) -> Path:
    """An absolute path to an existing image file the backend can read."""
    if not path_text.strip():
        raise ImageInputError("no image is chosen", "pick an image file or an image datablock")
    path = Path(bpy.path.abspath(path_text)).resolve()
    if not path.exists():
        raise ImageInputError(f"the image {path} does not exist", "check the path")
    if not path.is_file():
        raise ImageInputError(f"{path} is a folder, not an image file", "pick an image file")
    if path.suffix.lower() not in READABLE_SUFFIXES:
        raise ImageInputError(
            f"{path.name}: {path.suffix or 'files without an extension'} cannot be read",
            f"use one of {', '.join(READABLE_SUFFIXES)}",
        )
    return path


def datablock_image_file(image: bpy.types.Image | None, scratch: Path) -> Path:
    """The file behind `image`, or a copy written to `scratch` when it is packed or generated."""
    if image is None:
        raise ImageInputError("no image is chosen", "pick an image file or an image datablock")
    if image.source == "FILE" and not image.packed_file:
        return checked_image_file(image.filepath_from_user())  # linked: relative to its library
    if image.source not in ("FILE", "GENERATED"):
        raise ImageInputError(
            f"the image {image.name!r} is a {image.source.lower()} image",
            "save it as a file first, or pick a still image",
        )
    suffix = (Path(image.filepath).suffix.lower() or ".png") if image.packed_file else ".png"
    if suffix not in READABLE_SUFFIXES:
        raise ImageInputError(
            f"the packed image {image.name!r} is a {suffix} file, which the backend cannot read",
            "save it as PNG (Image > Save As) and pick that file",
        )
    target = scratch / f"{safe_stem(image.name)}{suffix}"
    try:
        scratch.mkdir(parents=True, exist_ok=True)
        if image.packed_file:
            target.write_bytes(image.packed_file.data)
        else:
            image.save(filepath=str(target), save_copy=True)
    except (OSError, RuntimeError) as error:
        raise ImageInputError(
            f"the image {image.name!r} cannot be written for the backend: {error}",
            f"check that {scratch} can be written",
        ) from error
    return target


def safe_stem(name: str) -> str:
    """A name that is safe as a file name and readable as an object name."""
    stem = re.sub(r"[^\w.-]+", "_", Path(name).stem if "." in name else name).strip("._")
    return stem or "image"
