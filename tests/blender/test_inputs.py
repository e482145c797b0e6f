"""Bad input is refused with a clear message before anything starts; the scene stays untouched."""

from __future__ import annotations

import bpy
import pytest
from addon_setup import REPO_ROOT

ROBOT = REPO_ROOT / "examples" / "robot.png"


def scene_is_empty() -> bool:
    return not bpy.data.objects and not bpy.data.meshes and not bpy.data.collections


@pytest.fixture
def no_worker(addon):
    yield addon.session.current().client
    assert addon.session.current().client.state is addon.client.WorkerState.STOPPED


@pytest.mark.parametrize(
    ("image_path", "message"),
    [
        ("", "No image is chosen"),
        ("/nowhere/robot.png", "does not exist"),
        (str(REPO_ROOT / "README.md"), ".md cannot be read"),
        (str(REPO_ROOT / "examples"), "is a folder"),
    ],
)
def test_bad_image_paths(addon, backend_python, prefs, no_worker, image_path, message):
    prefs.backend_python = str(backend_python)
    with pytest.raises(RuntimeError, match=message):
        bpy.ops.partpacker.generate(image_path=image_path)
    with pytest.raises(RuntimeError, match=message):
        bpy.context.scene.partpacker.image_path = image_path
        bpy.ops.partpacker.prepare()
    assert scene_is_empty()


def test_no_datablock_chosen(addon, no_worker):
    bpy.context.scene.partpacker.image_source = "IMAGE"
    with pytest.raises(RuntimeError, match="No image is chosen"):
        bpy.ops.partpacker.generate()
    assert scene_is_empty()


def test_backend_not_set_up(addon, prefs, no_worker, monkeypatch):
    monkeypatch.delenv("PARTPACKER_BACKEND_PYTHON", raising=False)
    prefs.backend_python = ""
    with pytest.raises(RuntimeError, match="backend is not set up"):
        bpy.ops.partpacker.generate(image_path=str(ROBOT))
    prefs.backend_python = "/nowhere/bin/python"
    with pytest.raises(RuntimeError, match="/nowhere/bin/python does not exist"):
        bpy.ops.partpacker.generate(image_path=str(ROBOT))
    assert scene_is_empty()


def test_a_generated_image_is_saved_as_png_for_the_backend(addon, tmp_path):
    image = bpy.data.images.new("painted sketch.v2", 8, 4, alpha=True)
    image.pixels.foreach_set([0.25] * (8 * 4 * 4))
    path = addon.image_input.datablock_image_file(image, tmp_path)
    assert path.parent == tmp_path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    reloaded = bpy.data.images.load(str(path))
    assert tuple(reloaded.size) == (8, 4)
    assert image.source == "GENERATED", "the user's image must not change"


def test_a_packed_image_is_written_as_its_own_bytes(addon, tmp_path):
    image = bpy.data.images.load(str(ROBOT))
    image.pack()
    path = addon.image_input.datablock_image_file(image, tmp_path)
    assert path.read_bytes() == ROBOT.read_bytes()


def test_an_image_file_datablock_is_used_in_place(addon, tmp_path):
    image = bpy.data.images.load(str(ROBOT))
    assert addon.image_input.datablock_image_file(image, tmp_path) == ROBOT.resolve()
    assert not any(tmp_path.iterdir())


def test_a_packed_image_the_backend_cannot_read_is_refused_with_what_to_do(addon, tmp_path):
    exr = tmp_path / "sky.exr"
    image = bpy.data.images.new("sky", 4, 4, float_buffer=True)
    image.filepath_raw = str(exr)
    image.file_format = "OPEN_EXR"
    image.save()
    image.pack()
    with pytest.raises(addon.image_input.ImageInputError, match="cannot read") as caught:
        addon.image_input.datablock_image_file(image, tmp_path / "scratch")
    assert "PNG" in caught.value.hint
    assert not (tmp_path / "scratch").exists()
