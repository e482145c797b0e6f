"""Scene settings (`Scene.partpacker`): the input image, the demo's parameters, output options.

The parameter and output definitions are shared with the generate operator, so a script's
`bpy.ops.partpacker.generate(steps=30)` takes the same names, defaults and ranges as the panel.
"""

from typing import Any

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty

MAX_SEED = 2**31 - 1
SCRIPT_ONLY = {"SKIP_SAVE"}
"""Operator properties not remembered between calls: unset ones fall back to the scene."""

GENERATION_PARAMETERS = (
    "steps",
    "cfg_scale",
    "grid_res",
    "seed",
    "randomize_seed",
    "simplify",
    "target_faces",
    "guidance_fraction",
    "remove_small_pieces",
)
OUTPUT_OPTIONS = ("size", "at_cursor", "shade_smooth", "new_collection")


def generation_properties(**extra: Any) -> dict[str, Any]:
    """The public demo's parameters: names, defaults and ranges (backend/params.py).
    `extra` goes to every property (the operator passes its options)."""
    return {
        "steps": IntProperty(
            **extra,
            name="Steps",
            default=50,
            min=1,
            max=100,
            description="Flow-matching sampler steps",
        ),
        "cfg_scale": FloatProperty(
            **extra,
            name="Guidance",
            default=7.0,
            min=2.0,
            max=10.0,
            description="Classifier-free guidance scale: how closely the shape follows the image",
        ),
        "grid_res": IntProperty(
            **extra,
            name="Grid Resolution",
            default=384,
            min=16,
            max=512,
            soft_min=256,
            soft_max=512,
            description="Marching-cubes grid resolution (the demo offers 256-512; "
            "lower values make quick previews)",
        ),
        "seed": IntProperty(
            **extra,
            name="Seed",
            default=0,
            min=0,
            max=MAX_SEED,
            description="Seed of the initial noise",
        ),
        "randomize_seed": BoolProperty(
            **extra,
            name="Randomize Seed",
            default=True,
            description="Draw a new seed for every generation; the result records which",
        ),
        "simplify": BoolProperty(
            **extra,
            name="Simplify",
            default=False,
            description="Decimate each volume to about the target number of faces",
        ),
        "target_faces": IntProperty(
            **extra,
            name="Target Faces",
            default=100_000,
            min=10_000,
            max=1_000_000,
            description="Face budget of each volume when simplifying",
        ),
        "guidance_fraction": FloatProperty(
            **extra,
            name="Guided Fraction",
            default=1.0,
            min=0.2,
            max=1.0,
            subtype="FACTOR",
            description="Speed preset that changes the result: apply guidance over only the first "
            "fraction of the steps (1.0 = every step, as the demo)",
        ),
        "remove_small_pieces": BoolProperty(
            **extra,
            name="Remove Small Pieces",
            default=False,
            description="The demo's clean-up: delete pieces smaller than 5% of the bounding-box "
            "diagonal or with fewer than 25 faces (genuine small parts go too)",
        ),
    }


def output_properties(**extra: Any) -> dict[str, Any]:
    """How the parts arrive in the scene."""
    return {
        "size": FloatProperty(
            **extra,
            name="Size",
            default=2.0,
            min=0.001,
            soft_max=100.0,
            subtype="DISTANCE",
            unit="LENGTH",
            description="Size of the model's bounding cube (the model spans [-1, 1] at 2 m)",
        ),
        "at_cursor": BoolProperty(
            **extra,
            name="Place at 3D Cursor",
            default=True,
            description="Put the result at the 3D cursor (beside whatever stands there, so that "
            "it is not hidden inside it); off: at the world origin, likewise",
        ),
        "shade_smooth": BoolProperty(
            **extra, name="Shade Smooth", default=True, description="Smooth shading on every part"
        ),
        "new_collection": BoolProperty(
            **extra,
            name="New Collection",
            default=True,
            description="Put each result in its own collection named after the image and seed",
        ),
    }


def _forget_preview(settings: Any, _context: bpy.types.Context) -> None:
    """Another image is chosen: the segmentation shown was made from the one before."""
    if settings.preview_image is not None:
        settings.preview_image = None


def image_properties() -> dict[str, Any]:
    return {
        "image_source": EnumProperty(
            name="Source",
            items=(
                ("FILE", "File", "An image file on disk", "FILE_IMAGE", 0),
                ("IMAGE", "Image", "An image in this .blend file", "IMAGE_DATA", 1),
            ),
            default="FILE",
            update=_forget_preview,
        ),
        "image_path": bpy.props.StringProperty(
            name="Image",
            subtype="FILE_PATH",
            update=_forget_preview,
            description="Photo or render of one object (PNG with alpha keeps its mask)",
        ),
        "image": PointerProperty(
            name="Image",
            type=bpy.types.Image,
            description="Image datablock; packed and generated images are saved to a temporary PNG",
            update=_forget_preview,
        ),
        "preview_image": PointerProperty(
            name="Segmentation",
            type=bpy.types.Image,
            description="The background-removed, recentred image the model sees",
        ),
    }


class PARTPACKER_PG_settings(bpy.types.PropertyGroup):
    __annotations__ = {**image_properties(), **generation_properties(), **output_properties()}


CLASSES = (PARTPACKER_PG_settings,)
