"""Images from inside Blender (parts/image_sources.py) become PNGs that the real backend's
`prepare` accepts; where there is nothing to take, the error says what to do. The images have
alpha masks: the tests have no background-removal model to download."""

from __future__ import annotations

import bpy
import numpy as np
import pytest
from addon_setup import REPO_ROOT

ROBOT = REPO_ROOT / "examples" / "robot.png"


@pytest.fixture
def sources(addon):
    return addon.parts.image_sources


@pytest.fixture
def staged_scene():
    """A red monkey in front of a camera, rendered small by Cycles in the tests."""
    scene = bpy.context.scene
    camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(camera)
    camera.location, camera.rotation_euler = (0.0, -5.0, 0.0), (np.pi / 2, 0.0, 0.0)
    scene.camera = camera
    bpy.ops.mesh.primitive_monkey_add()
    material = bpy.data.materials.new("red")
    material.use_nodes = True
    shader = material.node_tree.nodes["Principled BSDF"]
    shader.inputs["Base Color"].default_value = (0.8, 0.05, 0.05, 1.0)
    bpy.context.active_object.data.materials.append(material)
    scene.world = bpy.data.worlds.new("white")
    scene.world.color = (1.0, 1.0, 1.0)
    scene.render.resolution_x, scene.render.resolution_y = 1920, 1080
    return scene


def pixels(path) -> tuple[tuple[int, int], np.ndarray]:
    image = bpy.data.images.load(str(path), check_existing=False)
    size = tuple(image.size)
    values = np.empty(len(image.pixels), dtype=np.float32)
    image.pixels.foreach_get(values)
    bpy.data.images.remove(image)
    return size, values.reshape(size[1], size[0], 4)


def prepared_by_the_backend(addon, image, tmp_path) -> None:
    session = addon.session.current()
    preview = tmp_path / "preview.png"
    task = session.start_prepare(image, preview, bpy.context.scene.name)
    session.wait(task)
    assert task.error is None, task.error
    assert preview.is_file()


def test_a_camera_render_is_small_transparent_around_the_object_and_accepted(
    addon, backend, sources, staged_scene, tmp_path
):
    render = staged_scene.render
    before = (render.engine, render.resolution_x, render.resolution_percentage, render.filepath)

    path = sources.image_from_blender("CAMERA", bpy.context)

    size, rgba = pixels(path)
    assert size == (512, 288), "the long side 512 px, the scene's aspect"
    assert rgba[0, 0, 3] == 0.0, "a transparent background"
    centre = rgba[144, 256]
    assert centre[3] == pytest.approx(1.0) and centre[0] > 2 * centre[2], "the red monkey"
    after = (render.engine, render.resolution_x, render.resolution_percentage, render.filepath)
    assert after == before, "the scene's render settings are put back"
    prepared_by_the_backend(addon, path, tmp_path)


def test_a_camera_that_sees_nothing_and_a_scene_without_one_are_refused(
    addon, sources, staged_scene
):
    staged_scene.camera.rotation_euler = (-np.pi / 2, 0.0, 0.0)  # looking away from the monkey
    with pytest.raises(addon.image_input.ImageInputError, match="Camera Render image is empty"):
        sources.image_from_blender("CAMERA", bpy.context)
    staged_scene.camera = None
    with pytest.raises(addon.image_input.ImageInputError, match="the scene has no camera"):
        sources.image_from_blender("CAMERA", bpy.context)


def test_the_render_result_is_saved_and_accepted(addon, backend, sources, staged_scene, tmp_path):
    with pytest.raises(addon.image_input.ImageInputError, match="no Render Result yet"):
        sources.image_from_blender("RENDER_RESULT", bpy.context)
    render = staged_scene.render
    render.engine, render.resolution_percentage = "CYCLES", 10
    render.film_transparent = True  # an alpha mask: the tests have no background-removal model
    staged_scene.cycles.samples = 4
    bpy.ops.render.render()

    path = sources.image_from_blender("RENDER_RESULT", bpy.context)
    assert pixels(path)[0] == (192, 108)
    prepared_by_the_backend(addon, path, tmp_path)


def test_an_empty_viewer_node_image_is_refused(addon, sources, staged_scene):
    """The bpy module's compositor never fills the Viewer node: its image stays empty."""
    with pytest.raises(addon.image_input.ImageInputError, match="no Viewer Node yet"):
        sources.image_from_blender("VIEWER_NODE", bpy.context)
    bpy.data.images.new("Viewer Node", 16, 16, alpha=True).generated_color = (0, 0, 0, 0)
    with pytest.raises(addon.image_input.ImageInputError, match="Viewer Node image is empty"):
        sources.image_from_blender("VIEWER_NODE", bpy.context)


def test_the_image_in_an_image_editor_is_taken_and_accepted(addon, backend, sources, tmp_path):
    with pytest.raises(addon.image_input.ImageInputError, match="no Image Editor shows"):
        sources.image_from_blender("IMAGE_EDITOR", bpy.context)
    editor = bpy.context.window_manager.windows[0].screen.areas[0]
    editor.type = "IMAGE_EDITOR"
    editor.spaces.active.image = bpy.data.images.load(str(ROBOT))
    assert sources.image_from_blender("IMAGE_EDITOR", bpy.context) == ROBOT

    painted = bpy.data.images.new("painted", 64, 64, alpha=True)
    square = np.zeros((64, 64, 4), dtype=np.float32)
    square[16:48, 16:48] = (0.2, 0.6, 0.9, 1.0)  # an opaque square on a transparent ground
    painted.pixels.foreach_set(square.ravel())
    editor.spaces.active.image = painted
    path = sources.image_from_blender("IMAGE_EDITOR", bpy.context)
    assert path.suffix == ".png" and path.is_file()
    prepared_by_the_backend(addon, path, tmp_path)


def test_the_clipboard_says_what_it_needs(addon, sources):
    """Without an Image Editor in the window, and with nothing on the (bpy module's) clipboard."""
    with pytest.raises(addon.image_input.ImageInputError, match="needs an Image Editor"):
        sources.image_from_blender("CLIPBOARD", bpy.context)
    bpy.context.window_manager.windows[0].screen.areas[0].type = "IMAGE_EDITOR"
    with pytest.raises(addon.image_input.ImageInputError, match="clipboard holds no image"):
        sources.image_from_blender("CLIPBOARD", bpy.context)
    assert not bpy.data.images, "nothing is left behind"


def test_an_unknown_source_is_named(sources):
    with pytest.raises(ValueError, match="unknown image source 'WEBCAM'"):
        sources.image_from_blender("WEBCAM", bpy.context)


def test_the_button_makes_the_image_the_panel_s_input(addon):
    editor = bpy.context.window_manager.windows[0].screen.areas[0]
    editor.type = "IMAGE_EDITOR"
    editor.spaces.active.image = bpy.data.images.load(str(ROBOT))
    settings = bpy.context.scene.partpacker
    assert bpy.ops.partpacker.image_from_blender(source="IMAGE_EDITOR") == {"FINISHED"}
    assert settings.image_source == "IMAGE"
    assert bpy.path.abspath(settings.image.filepath) == str(ROBOT)
    with pytest.raises(RuntimeError, match="no Render Result yet"):
        bpy.ops.partpacker.image_from_blender(source="RENDER_RESULT")
