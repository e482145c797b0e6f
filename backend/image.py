"""Image preparation (the demo's `process_image`): load a picture, cut the object out, recentre it.

Recipe, as the public demo does it: an image with a meaningful alpha channel keeps it; any other
image goes through rembg (u2net by default). The mask is alpha > 0; the object's bounding box is
scaled so its longer side fills 90% of a square canvas, centred, and the canvas is 518x518 RGBA.
The model sees it composited on white.

Two knowing differences from the demo, neither changing the geometry:
- The demo scales the crop into a canvas the size of the image's longer side, then area-resizes
  that canvas to 518. Here the crop is resampled once, straight to its final size in the 518 canvas:
  the same placement (within a pixel), one resampling instead of two, and no full-size canvas.
  Shrinking uses Pillow's BOX filter (area averaging, like OpenCV's INTER_AREA); enlarging, which
  only happens for small objects, uses BILINEAR, close to what INTER_AREA does when it enlarges.
  Pillow resamples RGBA with premultiplied alpha, so transparent pixels do not bleed colour.
- rembg's mask becomes the alpha of the untouched colours (rembg's default cut-out also multiplies
  the colours by the mask, which leaves a dark fringe once composited on white).
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import BadInputError, OutputError, WeightsError
from .files import open_image_file, require_file_to_write, write_atomically
from .hub_download import hub_offline

if TYPE_CHECKING:
    from rembg.sessions.base import BaseSession

log = logging.getLogger(__name__)

MODEL_IMAGE_SIZE = 518
OBJECT_FILL = 0.9
MIN_SIDE = 16
DEFAULT_MAX_PIXELS = 64_000_000
DEFAULT_REMBG_MODEL = "u2net"
CUSTOM_REMBG_MODEL = "u2net_custom"

SIXTEEN_BIT_GRAY_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N")
ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
READABLE_FORMATS = "PNG, JPEG, WebP, BMP, TGA or TIFF"
# What Pillow raises for files it recognises but cannot decode (truncated, corrupt, odd modes).
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError)
# What rembg and onnxruntime raise when the segmentation model cannot be loaded or run.
SEGMENTER_ERRORS = (
    OSError,
    ValueError,
    RuntimeError,
    ort_errors.Fail,
    ort_errors.InvalidArgument,
    ort_errors.InvalidGraph,
    ort_errors.InvalidProtobuf,
    ort_errors.NoSuchFile,
    ort_errors.NoModel,
    ort_errors.RuntimeException,
)


def load_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Read an image upright (EXIF orientation applied) as RGBA if it has transparency, else RGB."""
    path = Path(path)
    with open_image_file(path) as stream:
        return _decode(stream, path, max_pixels)


def _decode(stream: BinaryIO, path: Path, max_pixels: int) -> Image.Image:
    try:
        with _pixel_limit(max_pixels), Image.open(stream) as image:
            _require_usable_size(image.size, path)
            image.load()
            return _to_rgb_or_rgba(ImageOps.exif_transpose(image))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadInputError(
            f"{path.name} is too large: more than {max_pixels:,} pixels ({exc})",
            "Scale the image down first; the model sees 518x518 pixels anyway.",
        ) from exc
    except UnidentifiedImageError as exc:
        raise BadInputError(
            f"{path.name} is not an image file that can be read",
            f"Use a {READABLE_FORMATS} image.",
        ) from exc
    except DECODE_ERRORS as exc:
        raise BadInputError(
            f"{path.name} cannot be decoded; the file is damaged or truncated ({exc})",
            "Open and re-save the image in an image editor, or use another file.",
        ) from exc


def _require_usable_size(size: tuple[int, int], path: Path) -> None:
    width, height = size
    if min(width, height) < MIN_SIDE:
        raise BadInputError(
            f"{path.name} is {width}x{height} pixels; each side needs at least {MIN_SIDE}",
            "Use a picture in which the object is clearly visible (a few hundred pixels or more).",
        )


@contextmanager
def _pixel_limit(max_pixels: int) -> Iterator[None]:
    """Pillow's decompression-bomb limit set to `max_pixels` for one call, its warning an error."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _to_rgb_or_rgba(image: Image.Image) -> Image.Image:
    if image.mode in SIXTEEN_BIT_GRAY_MODES:
        image = _sixteen_bit_to_8_bit(image)
    has_alpha = image.mode in ALPHA_MODES or "transparency" in image.info
    return image.convert("RGBA" if has_alpha else "RGB")


def _sixteen_bit_to_8_bit(image: Image.Image) -> Image.Image:
    # Pillow's own conversion clips 16-bit values at 255 instead of scaling them.
    values = np.clip(np.asarray(image, dtype=np.float64), 0, 65535)
    return Image.fromarray(np.rint(values / 257).astype(np.uint8))


class BackgroundRemover:
    """rembg background removal; the session is created on first use and reused afterwards.

    `model_name` is a rembg session name; "u2net" is the demo's choice. `model_path` is a custom
    ONNX model: with "u2net" it runs in rembg's "u2net_custom" session (u2net's input and output
    layout), or in the "*_custom" session that `model_name` names.
    """

    def __init__(
        self, model_name: str = DEFAULT_REMBG_MODEL, model_path: str | Path | None = None
    ) -> None:
        self.model_path = Path(model_path).resolve() if model_path is not None else None
        self.model_name = _session_name(model_name, self.model_path)
        self._session: BaseSession | None = None

    @property
    def session(self) -> BaseSession:
        if self._session is None:
            self._session = self._create_session()
        return self._session

    def cut_out(self, image: Image.Image) -> Image.Image:
        """The image as RGBA with rembg's foreground mask as its alpha channel."""
        import rembg

        try:
            # rembg scales the prediction by (max - min), which is 0 for a blank prediction.
            with np.errstate(invalid="ignore", divide="ignore"):
                mask = rembg.remove(image, session=self.session, only_mask=True)
        except SEGMENTER_ERRORS as exc:
            raise WeightsError(
                f"background removal with rembg model {self.model_name!r} failed: {exc}",
                "Check that the model is a u2net-style ONNX segmentation model.",
            ) from exc
        if mask.getbbox() is None:
            raise BadInputError(
                "background removal found no object in the image",
                "Use an image with an alpha channel, or a photo in which one object stands "
                "out clearly from a plain background.",
            )
        cutout = image.convert("RGBA")
        cutout.putalpha(mask)
        return cutout

    def _create_session(self) -> BaseSession:
        import rembg

        started = time.perf_counter()
        kwargs = {"model_path": str(self.model_path)} if self.model_path else {}
        self._refuse_to_download()
        try:
            self._require_model_file()
            with _rembg_home(self.model_path.parent if self.model_path else None):
                session = rembg.new_session(self.model_name, **kwargs)
        except SEGMENTER_ERRORS as exc:
            raise WeightsError(
                f"the background-removal model {self.model_name!r} cannot be loaded: {exc}",
                self._load_failure_hint(),
            ) from exc
        log.info("rembg session %r ready in %.2f s", self.model_name, time.perf_counter() - started)
        return session

    def _load_failure_hint(self) -> str:
        if self.model_path is not None:
            return "Check that the model path points to a u2net-style ONNX segmentation model."
        return (
            "rembg downloads its models on first use (u2net: 176 MB, into "
            "~/.rembg/models/u2net/ unless $REMBG_HOME or $U2NET_HOME is set); without a "
            "connection, place u2net.onnx there, or use an image with an alpha channel."
        )

    def _refuse_to_download(self) -> None:
        """rembg fetches a missing model from the internet; not while downloads are off."""
        if self.model_path is None and hub_offline() and rembg_model_file(self.model_name) is None:
            raise WeightsError(
                f"the background-removal model {self.model_name!r} is not downloaded yet, and "
                "downloads are off (HF_HUB_OFFLINE)",
                "allow downloads once (in Blender: Preferences > System > Network > Allow Online "
                "Access), or use an image with an alpha channel",
            )

    def _require_model_file(self) -> None:
        if self.model_path is not None and not self.model_path.is_file():
            raise FileNotFoundError(f"no ONNX model at {self.model_path}")


def rembg_model_file(name: str) -> str | None:
    """Where rembg keeps its model `name` once downloaded; None until then."""
    from rembg.sessions import sessions_class

    for session in sessions_class:
        if session.name() == name:
            return session.resolve_existing(f"{name}.onnx")
    return None


def _session_name(model_name: str, model_path: Path | None) -> str:
    if model_path is not None and model_name == DEFAULT_REMBG_MODEL:
        return CUSTOM_REMBG_MODEL
    if model_name.endswith("_custom") != (model_path is not None):
        raise BadInputError(
            f"rembg model {model_name!r} does not go with model path {model_path}",
            "Give a model path with 'u2net' or a '*_custom' model such as 'dis_custom', "
            "and no path with rembg's other models.",
        )
    return model_name


@contextmanager
def _rembg_home(folder: Path | None) -> Iterator[None]:
    """rembg only loads custom models from inside its data folder, which it reads from the
    environment; point it at the custom model's folder while the session is created."""
    if folder is None:
        yield
        return
    saved = os.environ.get("U2NET_HOME")
    os.environ["U2NET_HOME"] = str(folder)
    try:
        yield
    finally:
        if saved is None:
            del os.environ["U2NET_HOME"]
        else:
            os.environ["U2NET_HOME"] = saved


@dataclass(frozen=True)
class PreparedImage:
    """The recentred RGBA image the model sees, and where it came from."""

    rgba: np.ndarray  # uint8 [518, 518, 4], transparent around the object
    had_alpha: bool  # True when the source's own alpha was used, False when rembg cut it out
    source_size: tuple[int, int]  # (width, height) of the upright source image

    def model_input(self) -> np.ndarray:
        """float32 [3, 518, 518] in [0, 1]: the object composited on white."""
        rgba = self.rgba.astype(np.float32) / 255.0
        rgb, alpha = rgba[..., :3], rgba[..., 3:]
        composite = rgb * alpha + (1.0 - alpha)
        return np.ascontiguousarray(composite.transpose(2, 0, 1))

    def save_preview(self, path: str | Path) -> Path:
        """Write the RGBA image as a PNG; a reader never sees half a file."""
        path = Path(path)
        require_file_to_write(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            image = Image.fromarray(self.rgba)
            write_atomically(path, lambda temporary: image.save(temporary, format="PNG"))
        except OSError as exc:
            raise OutputError(
                f"cannot write the preview image {path}: {exc.strerror or exc}",
                "Choose a folder you can write to, with free disk space.",
            ) from exc
        return path


class ImagePreparer:
    """load -> keep alpha or remove the background -> recentre -> 518x518. Create once, reuse."""

    def __init__(
        self, remover: BackgroundRemover | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
    ) -> None:
        self.remover = remover or BackgroundRemover()
        self.max_pixels = max_pixels

    def prepare(self, path: str | Path) -> PreparedImage:
        image = load_image(path, self.max_pixels)
        cutout, had_alpha = self._cut_out(image)
        rgba = recentre(cutout)
        log.info("prepared %s (%dx%d, own alpha: %s)", path, *image.size, had_alpha)
        return PreparedImage(rgba=rgba, had_alpha=had_alpha, source_size=image.size)

    def prepare_preview(self, path: str | Path, preview: Path) -> PreparedImage:
        """`prepare`, its result written to `preview` (PNG); a preview path that cannot be
        written as a file is refused first."""
        require_file_to_write(preview)
        prepared = self.prepare(path)
        prepared.save_preview(preview)
        return prepared

    def _cut_out(self, image: Image.Image) -> tuple[Image.Image, bool]:
        if image.mode == "RGBA":
            alpha = np.asarray(image.getchannel("A"))
            if not alpha.any():
                raise BadInputError(
                    "the image is fully transparent: its alpha channel is 0 everywhere",
                    "Export the image with the object visible, or without an alpha channel "
                    "so that the background is removed automatically.",
                )
            if (alpha < 255).any():
                return image, True
        return self.remover.cut_out(image.convert("RGB")), False


def recentre(
    image: Image.Image, size: int = MODEL_IMAGE_SIZE, fill: float = OBJECT_FILL
) -> np.ndarray:
    """uint8 [size, size, 4]: the visible part of an RGBA image, its longer side `fill` of the
    canvas, centred on a transparent square."""
    box = image.getbbox(alpha_only=True)
    if box is None:
        raise ValueError("recentre needs an image with at least one visible pixel")
    width, height = box[2] - box[0], box[3] - box[1]
    scale = round(fill * size) / max(width, height)
    scaled_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    scaled = image.crop(box).resize(scaled_size, resample)
    canvas = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    canvas.paste(scaled, ((size - scaled_size[0]) // 2, (size - scaled_size[1]) // 2))
    return np.asarray(canvas).copy()
