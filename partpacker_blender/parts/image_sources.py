"""Images from inside Blender as PNG files the backend reads: the Render Result, the Viewer
Node's image, the image shown in an Image Editor, a small camera render of the scene, the
clipboard. Each writes a new PNG (a new name each time, so nothing stale is read) into the
inputs folder beside the job folders, which outlives the extension."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import bpy
import numpy as np

from ..generation import INPUT_FOLDER
from ..image_input import ImageInputError, datablock_image_file
from ..settings import jobs_folder
from .camera_render import render_camera

SOURCES = {
    "RENDER_RESULT": ("Render Result", "The last render (F12)", "RENDER_RESULT"),
    "VIEWER_NODE": ("Viewer Node", "The compositor's Viewer node image", "NODE_COMPOSITING"),
    "IMAGE_EDITOR": ("Image Editor", "The image shown in an Image Editor", "IMAGE"),
    "CAMERA": ("Camera Render", "A small, quick render of the scene's camera", "CAMERA_DATA"),
    "CLIPBOARD": ("Clipboard", "An image copied to the clipboard", "PASTEDOWN"),
}
"""source: (label, description, icon)."""
RENDER_IMAGES = {"RENDER_RESULT": "Render Result", "VIEWER_NODE": "Viewer Node"}


def image_from_blender(source: str, context: bpy.types.Context) -> Path:
    """A PNG of `source` (a key of SOURCES). Raises ImageInputError: nothing there yet, an
    empty image, or a file that cannot be written."""
    if source not in SOURCES:
        raise ValueError(f"unknown image source {source!r}: use one of {', '.join(SOURCES)}")
    target = inputs_folder(context) / f"{source.lower()}-{time.strftime('%Y%m%d-%H%M%S')}.png"
    target = _unused(target)
    scene = context.scene
    if source in RENDER_IMAGES:
        _save_render(bpy.data.images.get(RENDER_IMAGES[source]), SOURCES[source][0], target, scene)
    elif source == "CAMERA":
        render_camera(scene, target)
        _check_not_empty(target, SOURCES[source][0])
    elif source == "IMAGE_EDITOR":
        image = editor_image(_screens(context))
        if image.type not in ("RENDER_RESULT", "COMPOSITING"):
            return datablock_image_file(image, target.parent)
        _save_render(image, image.name, target, scene)
    else:
        target = _paste_clipboard(context, target)
    return target


def inputs_folder(context: bpy.types.Context) -> Path:
    """Beside the job folders (kept with the user's work, not in the extension's own folder)."""
    folder = jobs_folder(context) / INPUT_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def editor_image(screens: Iterable[bpy.types.Screen]) -> bpy.types.Image:
    """The image of the first Image Editor that shows one."""
    for screen in screens:
        for area in screen.areas:
            space = area.spaces.active
            if area.type == "IMAGE_EDITOR" and space.image is not None:
                return space.image
    raise ImageInputError("no Image Editor shows an image", "open an image in an Image Editor")


def _screens(context: bpy.types.Context) -> list[bpy.types.Screen]:
    """The windows' screens, the active one first; without windows (background mode), the
    file's screens."""
    windows = list(context.window_manager.windows)
    if not windows:
        return list(bpy.data.screens)
    active = context.window.screen if context.window else None
    return [s for s in [active, *(w.screen for w in windows)] if s is not None]


def _save_render(image, name: str, target: Path, scene: bpy.types.Scene) -> None:
    if image is None:
        raise ImageInputError(f"there is no {name} yet", "render first (F12)")
    settings = scene.render.image_settings
    saved = (settings.file_format, settings.color_mode, settings.color_depth)
    settings.file_format, settings.color_mode, settings.color_depth = "PNG", "RGBA", "8"
    try:
        image.save_render(str(target), scene=scene)
    except RuntimeError as error:
        raise ImageInputError(f"the {name} cannot be saved: {error}", "render first") from error
    finally:
        settings.file_format, settings.color_mode, settings.color_depth = saved
    _check_not_empty(target, name)


def _paste_clipboard(context: bpy.types.Context, target: Path) -> Path:
    before = set(bpy.data.images)
    try:
        with context.temp_override(**_image_editor_override(context)):
            bpy.ops.image.clipboard_paste()
    except RuntimeError as error:
        raise ImageInputError(
            "the clipboard holds no image Blender can paste", "copy an image first"
        ) from error
    pasted = [image for image in bpy.data.images if image not in before]
    if not pasted:
        raise ImageInputError("the clipboard holds no image", "copy an image first")
    image = pasted[0]
    try:
        image.filepath_raw = str(target)
        image.file_format = "PNG"
        image.save()
    finally:
        bpy.data.images.remove(image)
    return target


def _image_editor_override(context: bpy.types.Context) -> dict:
    """Blender's paste operator runs in an Image Editor: the window's first one."""
    for area in context.window.screen.areas if context.window else ():
        if area.type == "IMAGE_EDITOR":
            return {"area": area, "region": area.regions[-1]}
    raise ImageInputError(
        "pasting needs an Image Editor open in this window", "open one, then paste again"
    )


def _check_not_empty(path: Path, name: str) -> None:
    """A render that never ran, a Viewer node the compositor never filled, or a camera that sees
    nothing saves as a fully transparent image: the backend would find nothing in it. (Render
    sized: loading it to look costs little.)"""
    image = bpy.data.images.load(str(path), check_existing=False)
    try:
        alpha = np.empty(len(image.pixels), dtype=np.float32)
        image.pixels.foreach_get(alpha)
        empty = image.size[0] == 0 or not alpha[3::4].any()
    finally:
        bpy.data.images.remove(image)
    if empty:
        path.unlink(missing_ok=True)
        raise ImageInputError(f"the {name} image is empty", "render it first")


def _unused(path: Path) -> Path:
    number = 2
    candidate = path
    while candidate.exists():
        candidate, number = path.with_name(f"{path.stem}-{number}{path.suffix}"), number + 1
    return candidate
