"""Image preparation: loading, background removal (real rembg, a tiny ONNX model), recentring."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rembg
from PIL import Image

from backend.errors import BadInputError, OutputError, WeightsError
from backend.image import BackgroundRemover, ImagePreparer, PreparedImage, load_image
from tests.backend.rembg_model import build_border_contrast_model
from tests.backend.special_files import call_unblocked, make_fifo, make_null_device, make_socket

CANVAS = 518
OBJECT_SIDE = 0.9 * CANVAS  # the object's longer side on the canvas, before rounding
WHITE = (255, 255, 255)
RED = (200, 30, 30)
BLUE = (30, 60, 220)


@pytest.fixture(scope="module")
def segmenter_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_border_contrast_model(tmp_path_factory.mktemp("rembg") / "border.onnx")


@pytest.fixture
def remover(segmenter_path: Path) -> BackgroundRemover:
    return BackgroundRemover(model_path=segmenter_path)


@pytest.fixture
def rembg_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts calls to rembg's session factory and remove(), which still run for real."""
    calls = {"new_session": 0, "remove": 0}
    for name in calls:
        real = getattr(rembg, name)

        def counted(*args, _name=name, _real=real, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(rembg, name, counted)
    return calls


def rgb_with_rectangles(
    size: tuple[int, int], boxes: list[tuple[int, int, int, int]], colours=(RED, BLUE)
) -> Image.Image:
    image = Image.new("RGB", size, WHITE)
    for box, colour in zip(boxes, colours, strict=False):
        image.paste(colour, box)
    return image


def rgba_with_rectangle(
    size: tuple[int, int], box: tuple[int, int, int, int], alpha: int = 255
) -> Image.Image:
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    image.paste((*RED, alpha), box)
    return image


def save(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


def visible_box(rgba: np.ndarray) -> tuple[int, int, int, int]:
    """(left, top, right, bottom), right and bottom exclusive, of the pixels with alpha > 0."""
    rows = np.flatnonzero((rgba[..., 3] > 0).any(axis=1))
    cols = np.flatnonzero((rgba[..., 3] > 0).any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def rectangle_mask(shape: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    left, top, right, bottom = box
    mask[top:bottom, left:right] = True
    return mask


# --- background removal with rembg ----------------------------------------------------------


def test_rembg_mask_covers_exactly_a_two_part_object(remover: BackgroundRemover) -> None:
    boxes = [(40, 60, 140, 200), (180, 100, 290, 150)]
    cutout = remover.cut_out(rgb_with_rectangles((320, 320), boxes))
    alpha = np.asarray(cutout)[..., 3]
    expected = rectangle_mask((320, 320), boxes[0]) | rectangle_mask((320, 320), boxes[1])
    assert cutout.mode == "RGBA"
    np.testing.assert_array_equal(alpha, np.where(expected, 255, 0))
    assert np.asarray(cutout)[100, 90, :3].tolist() == list(RED)  # colours are not darkened


def test_rembg_mask_is_resized_back_to_a_larger_image(remover: BackgroundRemover) -> None:
    box = (150, 80, 330, 300)
    cutout = remover.cut_out(rgb_with_rectangles((480, 400), [box]))
    solid = np.asarray(cutout)[..., 3] > 127
    expected = rectangle_mask((400, 480), box)
    iou = (solid & expected).sum() / (solid | expected).sum()
    assert iou > 0.97


def test_rgb_image_is_cut_out_and_recentred(remover: BackgroundRemover, tmp_path: Path) -> None:
    path = save(rgb_with_rectangles((320, 320), [(100, 50, 200, 250)]), tmp_path / "object.png")
    prepared = ImagePreparer(remover).prepare(path)
    left, top, right, bottom = visible_box(prepared.rgba)
    assert prepared.had_alpha is False
    assert prepared.source_size == (320, 320)
    assert abs((bottom - top) - OBJECT_SIDE) <= 1  # the object is 200 tall, 100 wide
    assert abs((right - left) - OBJECT_SIDE / 2) <= 2
    assert abs((left + right) / 2 - CANVAS / 2) <= 1
    assert abs((top + bottom) / 2 - CANVAS / 2) <= 1


def test_image_without_any_object_is_refused(remover: BackgroundRemover, tmp_path: Path) -> None:
    path = save(Image.new("RGB", (200, 200), (90, 140, 60)), tmp_path / "plain.png")
    with pytest.raises(BadInputError, match="found no object") as caught:
        ImagePreparer(remover).prepare(path)
    assert "alpha channel" in caught.value.hint


def test_session_is_created_once_for_two_images(
    remover: BackgroundRemover,
    rembg_calls: dict[str, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("U2NET_HOME", raising=False)
    preparer = ImagePreparer(remover)
    first = save(rgb_with_rectangles((320, 240), [(20, 20, 120, 90)]), tmp_path / "a.png")
    second = save(rgb_with_rectangles((256, 300), [(50, 60, 200, 280)]), tmp_path / "b.png")
    results = [preparer.prepare(first), preparer.prepare(second)]
    assert [result.had_alpha for result in results] == [False, False]
    assert rembg_calls == {"new_session": 1, "remove": 2}
    assert "U2NET_HOME" not in os.environ  # set only while rembg loads the custom model


def test_meaningful_alpha_is_kept_and_rembg_never_runs(
    remover: BackgroundRemover, rembg_calls: dict[str, int], tmp_path: Path
) -> None:
    image = rgba_with_rectangle((600, 600), (100, 100, 500, 500))
    image.paste((*BLUE, 128), (100, 300, 500, 500))  # the lower half is half transparent
    prepared = ImagePreparer(remover).prepare(save(image, tmp_path / "cutout.png"))
    assert prepared.had_alpha is True
    assert rembg_calls == {"new_session": 0, "remove": 0}
    # The 400 px square becomes 466 px at (26, 26): upper half opaque red, lower half alpha 128.
    assert prepared.rgba[120, 259].tolist() == [*RED, 255]
    assert prepared.rgba[400, 259, 3] == 128
    # Pillow resamples with premultiplied alpha, which costs a unit of colour at alpha 128.
    np.testing.assert_allclose(prepared.rgba[400, 259, :3], BLUE, atol=1)


def test_opaque_alpha_channel_goes_through_rembg(
    remover: BackgroundRemover, rembg_calls: dict[str, int], tmp_path: Path
) -> None:
    image = rgb_with_rectangles((320, 320), [(60, 60, 260, 160)]).convert("RGBA")
    prepared = ImagePreparer(remover).prepare(save(image, tmp_path / "opaque.png"))
    assert prepared.had_alpha is False
    assert rembg_calls["remove"] == 1
    assert prepared.rgba[0, 0, 3] == 0


# --- recentring --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image_size", "box"),
    [
        ((1200, 900), (50, 500, 850, 800)),  # wide object, shrunk (BOX filter)
        ((400, 300), (300, 10, 340, 90)),  # tall object near a corner, enlarged
        ((64, 64), (0, 0, 64, 64)),  # object filling a small square image
    ],
)
def test_recentring_puts_the_object_at_90_percent_centred(
    image_size: tuple[int, int], box: tuple[int, int, int, int], tmp_path: Path
) -> None:
    path = save(rgba_with_rectangle(image_size, box, alpha=200), tmp_path / "object.png")
    prepared = ImagePreparer(BackgroundRemover()).prepare(path)
    width, height = box[2] - box[0], box[3] - box[1]
    expected = np.array([width, height]) * OBJECT_SIDE / max(width, height)
    left, top, right, bottom = visible_box(prepared.rgba)
    assert prepared.rgba.shape == (CANVAS, CANVAS, 4)
    assert prepared.rgba.dtype == np.uint8
    np.testing.assert_allclose([right - left, bottom - top], expected, atol=1)
    np.testing.assert_allclose([(left + right) / 2, (top + bottom) / 2], CANVAS / 2, atol=1)
    assert prepared.rgba[CANVAS // 2, CANVAS // 2].tolist() == [*RED, 200]
    assert prepared.source_size == image_size


# --- model input and preview -------------------------------------------------------------------


def test_model_input_is_composited_on_white() -> None:
    rgba = np.zeros((CANVAS, CANVAS, 4), dtype=np.uint8)
    rgba[:] = (12, 34, 56, 0)  # colour under zero alpha must not show
    rgba[10, 20] = (255, 0, 0, 255)
    rgba[30, 40] = (0, 0, 255, 51)  # alpha 0.2
    tensor = PreparedImage(rgba=rgba, had_alpha=True, source_size=(1, 1)).model_input()
    assert tensor.shape == (3, CANVAS, CANVAS)
    assert tensor.dtype == np.float32
    assert tensor[:, 0, 0].tolist() == [1.0, 1.0, 1.0]
    np.testing.assert_allclose(tensor[:, 10, 20], [1.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(tensor[:, 30, 40], [0.8, 0.8, 1.0], atol=1e-6)


def test_prepared_image_is_exactly_white_where_transparent(tmp_path: Path) -> None:
    path = save(rgba_with_rectangle((300, 200), (30, 40, 90, 190), alpha=90), tmp_path / "a.png")
    prepared = ImagePreparer(BackgroundRemover()).prepare(path)
    tensor = prepared.model_input()
    transparent = prepared.rgba[..., 3] == 0
    assert transparent.sum() > CANVAS * CANVAS / 2
    assert (tensor[:, transparent] == 1.0).all()
    assert tensor.min() >= 0.0
    assert tensor.max() <= 1.0


def test_preview_round_trips_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    rgba = np.random.default_rng(0).integers(0, 256, (CANVAS, CANVAS, 4), dtype=np.uint8)
    prepared = PreparedImage(rgba=rgba, had_alpha=True, source_size=(CANVAS, CANVAS))
    written = prepared.save_preview(tmp_path / "job" / "preview.png")
    with Image.open(written) as reread:
        assert reread.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(reread), rgba)
    assert [entry.name for entry in written.parent.iterdir()] == ["preview.png"]


def test_preview_into_an_unwritable_place_is_an_output_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the folder should be")
    prepared = PreparedImage(
        rgba=np.zeros((CANVAS, CANVAS, 4), np.uint8), had_alpha=True, source_size=(1, 1)
    )
    with pytest.raises(OutputError, match="cannot write the preview image"):
        prepared.save_preview(blocker / "preview.png")


# --- loading -----------------------------------------------------------------------------------


def truncated_png(folder: Path) -> Path:
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    path = save(Image.fromarray(noise), folder / "truncated.png")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def text_named_png(folder: Path) -> Path:
    path = folder / "notes.png"
    path.write_text("this is not a picture\n")
    return path


def folder_named_png(folder: Path) -> Path:
    path = folder / "folder.png"
    path.mkdir()
    return path


def black_square(side: int) -> Callable[[Path], Path]:
    return lambda folder: save(Image.new("RGB", (side, side)), folder / f"square{side}.png")


SMALL_LIMIT = 1000  # pixels: 64x64 is over twice the limit (Pillow's error), 40x40 just over it


@pytest.mark.parametrize(
    ("make_file", "max_pixels", "message"),
    [
        (black_square(1), None, "is 1x1 pixels"),
        (lambda folder: save(Image.new("RGB", (300, 8)), folder / "strip.png"), None, "300x8"),
        (truncated_png, None, "damaged or truncated"),
        (text_named_png, None, "not an image file"),
        (lambda folder: folder / "missing.png", None, "image not found"),
        (folder_named_png, None, "is a folder"),
        (black_square(64), SMALL_LIMIT, "too large: more than 1,000 pixels"),
        (black_square(40), SMALL_LIMIT, "too large: more than 1,000 pixels"),
    ],
    ids=["1x1", "thin", "truncated", "text", "missing", "folder", "bomb", "over-limit"],
)
def test_bad_files_are_refused_with_a_specific_message(
    make_file: Callable[[Path], Path], max_pixels: int | None, message: str, tmp_path: Path
) -> None:
    path = make_file(tmp_path)
    limits = {} if max_pixels is None else {"max_pixels": max_pixels}
    with pytest.raises(BadInputError, match=message) as caught:
        load_image(path, **limits)
    assert caught.value.hint
    assert "Traceback" not in str(caught.value)


def test_fully_transparent_image_is_refused(tmp_path: Path) -> None:
    path = save(Image.new("RGBA", (100, 100), (255, 0, 0, 0)), tmp_path / "empty.png")
    with pytest.raises(BadInputError, match="fully transparent") as caught:
        ImagePreparer(BackgroundRemover()).prepare(path)
    assert caught.value.hint


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    stored = Image.new("RGB", (64, 32), RED)
    stored.paste(BLUE, (32, 0, 64, 32))  # left half red, right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise: the left edge becomes the top
    path = save(stored, tmp_path / "photo.jpg", exif=exif, quality=95)
    image = load_image(path)
    assert image.size == (32, 64)
    np.testing.assert_allclose(image.getpixel((16, 12)), RED, atol=12)
    np.testing.assert_allclose(image.getpixel((16, 52)), BLUE, atol=12)


@pytest.mark.parametrize("file_format", ["PNG", "JPEG", "WEBP", "BMP", "TGA", "TIFF"])
def test_common_formats_load_as_rgb(file_format: str, tmp_path: Path) -> None:
    path = save(Image.new("RGB", (48, 32), (0, 128, 255)), tmp_path / "image", format=file_format)
    image = load_image(path)
    assert (image.mode, image.size) == ("RGB", (48, 32))
    np.testing.assert_allclose(image.getpixel((24, 16)), (0, 128, 255), atol=4)


def test_the_unreadable_file_hint_names_every_format_the_add_on_accepts(tmp_path: Path) -> None:
    add_on = (Path(__file__).parents[2] / "partpacker_blender" / "image_input.py").read_text()
    suffixes = re.search(r"READABLE_SUFFIXES = \((.*?)\)", add_on).group(1)
    path = tmp_path / "notes.tga"
    path.write_text("not an image")
    with pytest.raises(BadInputError) as raised:
        load_image(path)
    formats = {"jpg": "jpeg", "tif": "tiff"}
    for suffix in re.findall(r'"\.(\w+)"', suffixes):
        assert formats.get(suffix, suffix) in raised.value.hint.lower(), suffix


def test_palette_with_transparency_loads_as_rgba(tmp_path: Path) -> None:
    indices = np.zeros((32, 32), dtype=np.uint8)
    indices[8:24, 8:24] = 1
    palette = Image.fromarray(indices, mode="P")
    palette.putpalette([0, 0, 0, *RED])
    image = load_image(save(palette, tmp_path / "palette.png", transparency=0))
    assert image.mode == "RGBA"
    assert image.getpixel((0, 0))[3] == 0
    assert image.getpixel((16, 16)) == (*RED, 255)


def test_palette_without_transparency_loads_as_rgb(tmp_path: Path) -> None:
    palette = Image.new("P", (32, 32), 1)
    palette.putpalette([0, 0, 0, *BLUE])
    image = load_image(save(palette, tmp_path / "palette.gif"))
    assert (image.mode, image.getpixel((5, 5))) == ("RGB", BLUE)


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.full((32, 32), 65535, dtype=np.uint16)
    values[:, 16:] = 128 * 257  # mid-grey in 16 bits
    image = load_image(save(Image.fromarray(values), tmp_path / "depth.png"))
    assert image.mode == "RGB"
    assert image.getpixel((4, 4)) == (255, 255, 255)
    assert image.getpixel((24, 4)) == (128, 128, 128)


def test_grayscale_with_alpha_loads_as_rgba(tmp_path: Path) -> None:
    gray = Image.new("LA", (32, 32), (0, 0))
    gray.paste((180, 255), (8, 8, 24, 24))
    image = load_image(save(gray, tmp_path / "la.png"))
    assert image.mode == "RGBA"
    assert image.getpixel((16, 16)) == (180, 180, 180, 255)
    assert image.getpixel((1, 1))[3] == 0


def test_rgb_with_a_transparent_colour_key_loads_as_rgba(tmp_path: Path) -> None:
    keyed = rgb_with_rectangles((32, 32), [(8, 8, 24, 24)])
    image = load_image(save(keyed, tmp_path / "keyed.png", transparency=WHITE))
    assert image.mode == "RGBA"
    assert image.getpixel((1, 1))[3] == 0
    assert image.getpixel((16, 16)) == (*RED, 255)


def test_cmyk_loads_as_rgb(tmp_path: Path) -> None:
    cmyk = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # full magenta and yellow: red
    image = load_image(save(cmyk, tmp_path / "print.tif"))
    assert (image.mode, image.getpixel((16, 16))) == ("RGB", (255, 0, 0))


# --- background remover settings -------------------------------------------------------------


def test_missing_custom_model_is_a_weights_error(tmp_path: Path) -> None:
    remover = BackgroundRemover(model_path=tmp_path / "absent.onnx")
    with pytest.raises(WeightsError, match="no ONNX model at") as caught:
        remover.cut_out(rgb_with_rectangles((64, 64), [(8, 8, 40, 40)]))
    assert "model path" in caught.value.hint


def test_broken_custom_model_is_a_weights_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x00not a protobuf" * 10)
    with pytest.raises(WeightsError, match="cannot be loaded"):
        BackgroundRemover(model_path=broken).session  # noqa: B018


@pytest.mark.parametrize(
    ("model_name", "model_path"), [("isnet-general-use", "custom.onnx"), ("u2net_custom", None)]
)
def test_model_name_and_path_must_agree(model_name: str, model_path: str | None) -> None:
    with pytest.raises(BadInputError, match="does not go with model path"):
        BackgroundRemover(model_name, model_path)


def test_custom_model_path_with_the_default_name_uses_u2net_custom(tmp_path: Path) -> None:
    assert BackgroundRemover("u2net", tmp_path / "mine.onnx").model_name == "u2net_custom"
    assert BackgroundRemover().model_name == "u2net"


# --- the bundled example -----------------------------------------------------------------------


def test_bundled_example_is_ready_for_the_demo(rembg_calls: dict[str, int]) -> None:
    example = Path(__file__).parents[2] / "examples" / "robot.png"
    assert example.stat().st_size < 300 * 1024
    prepared = ImagePreparer(BackgroundRemover()).prepare(example)
    left, top, right, bottom = visible_box(prepared.rgba)
    assert prepared.had_alpha is True
    assert rembg_calls == {"new_session": 0, "remove": 0}  # the demo needs no rembg download
    assert abs(max(right - left, bottom - top) - OBJECT_SIDE) <= 1


def test_no_segmenter_download_while_downloads_are_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))  # an empty model folder
    monkeypatch.delenv("REMBG_HOME", raising=False)
    remover = BackgroundRemover("u2net")
    with pytest.raises(WeightsError, match="downloads are off"):
        remover.cut_out(Image.new("RGB", (64, 64), "grey"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("make", "kind"),
    [(make_fifo, "a named pipe (FIFO)"), (make_socket, "a socket"), (make_null_device, "device")],
)
def test_an_image_that_is_not_a_regular_file_is_refused_unopened(
    make: Callable[[Path], Path], kind: str, tmp_path: Path
) -> None:
    path = make(tmp_path)
    error = call_unblocked(lambda: load_image(path), path)
    assert isinstance(error, BadInputError)
    assert kind in error.message and "not an image file" in error.message
    linked = tmp_path / "link.png"
    linked.symlink_to(path)
    assert isinstance(call_unblocked(lambda: load_image(linked), path), BadInputError)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_a_system_device_as_the_image_is_refused(device: str) -> None:
    with pytest.raises(BadInputError, match="is a character device, not an image file"):
        load_image(device)


@pytest.mark.parametrize("make", [make_fifo, make_socket, make_null_device])
def test_a_preview_path_that_is_a_special_file_is_refused_and_left_alone(
    make: Callable[[Path], Path], tmp_path: Path
) -> None:
    path = make(tmp_path)
    mode = path.lstat().st_mode
    prepared = PreparedImage(np.zeros((CANVAS, CANVAS, 4), np.uint8), True, (CANVAS, CANVAS))
    with pytest.raises(OutputError, match="not a file to write into"):
        prepared.save_preview(path)
    assert path.lstat().st_mode == mode
    assert sorted(tmp_path.iterdir()) == [path]
