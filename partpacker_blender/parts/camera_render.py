"""A small, quick render of the scene's camera as the input image: Cycles at a few samples,
the long side RENDER_SIZE pixels, a transparent background (the backend keeps that alpha as
its mask). The scene's render settings are put back afterwards."""

from __future__ import annotations

from pathlib import Path

import bpy

from ..image_input import ImageInputError

RENDER_SIZE = 512
SAMPLES = 16
RENDER_SETTINGS = ("engine", "resolution_x", "resolution_y", "resolution_percentage")
RENDER_SETTINGS += ("film_transparent", "filepath", "use_file_extension")
IMAGE_SETTINGS = ("file_format", "color_mode", "color_depth")
CYCLES_SETTINGS = ("samples", "use_denoising", "use_adaptive_sampling")


def render_camera(scene: bpy.types.Scene, target: Path) -> None:
    """Render the scene's camera into the PNG `target`. Raises ImageInputError."""
    if scene.camera is None:
        raise ImageInputError("the scene has no camera", "add a camera or pick another source")
    render = scene.render
    saved = [
        (owner, name, getattr(owner, name))
        for owner, names in (
            (render, RENDER_SETTINGS),
            (render.image_settings, IMAGE_SETTINGS),
            (scene.cycles, CYCLES_SETTINGS),
        )
        for name in names
    ]
    try:
        width, height = render.resolution_x, render.resolution_y
        scale = RENDER_SIZE / max(width, height)
        render.resolution_x, render.resolution_y = (
            max(1, round(width * scale)),
            max(1, round(height * scale)),
        )
        render.resolution_percentage = 100
        render.engine = "CYCLES"
        scene.cycles.samples, scene.cycles.use_denoising = SAMPLES, False
        scene.cycles.use_adaptive_sampling = True
        render.film_transparent = True
        render.image_settings.file_format = "PNG"
        render.image_settings.color_mode = "RGBA"
        render.image_settings.color_depth = "8"
        render.filepath, render.use_file_extension = str(target), False
        bpy.ops.render.render(write_still=True, scene=scene.name)
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)
    if not target.is_file():
        raise ImageInputError(
            "the camera render was not written", f"check that {target.parent} can be written"
        )
