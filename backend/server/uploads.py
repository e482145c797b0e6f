"""An input image as the web app takes it: a file inside the server's own folder, and an image
within the pixel limit, read from its header before anything decodes it."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

from ..errors import BadInputError
from ..files import open_image_file
from ..image import READABLE_FORMATS

UPLOAD_HINT = (
    "upload an image: handle_file('photo.png') in gradio_client, or the page's Input Image"
)


def checked_upload(path: str | None, root: Path, max_pixels: int) -> Path:
    if path is None:
        raise BadInputError("no image was given", UPLOAD_HINT)
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(root):
        raise BadInputError(
            f"{path} is not a file uploaded to this server: it reads no other file", UPLOAD_HINT
        )
    width, height = image_size(resolved)
    if width * height > max_pixels:
        raise BadInputError(
            f"the image is {width}x{height} = {width * height:,} pixels; this server takes "
            f"images of at most {max_pixels:,} pixels",
            "scale it down first: the model sees 518x518 pixels anyway",
        )
    return resolved


def image_size(path: Path) -> tuple[int, int]:
    try:
        with open_image_file(path) as stream, Image.open(stream) as image:
            return image.size
    except Image.DecompressionBombError as error:
        raise BadInputError(
            f"{path.name} has too many pixels to open ({error})",
            "scale it down first: the model sees 518x518 pixels anyway",
        ) from error
    except (UnidentifiedImageError, OSError) as error:
        raise BadInputError(
            f"{path.name} is not an image file that can be read", f"use a {READABLE_FORMATS} image"
        ) from error
