"""Explode: one slider on a result's Empty moves every part away from the result's centre.

Non-destructive and animatable: the slider is a custom property of the Empty (keyframe it like
any other), and each part's delta_location is driven by it. The drivers are simple expressions
(`explode * 0.42`), which Blender evaluates without Python, so they work in files opened with
"Auto Run Python Scripts" off, and 0 gives back exactly the assembled model.

At `explode = 1` every part's centre is twice as far from the result's centre as assembled.
"""

from __future__ import annotations

import bpy
from mathutils import Vector

from .result_parts import parts_of, rest_centre

EXPLODE_KEY = "partpacker_explode"
"""The Empty's custom property that the slider shows and the drivers read."""
DRIVER_VARIABLE = "explode"
SOFT_MAX = 2.0


def add_explode(root: bpy.types.Object) -> None:
    """Give `root` the slider (kept if it has one) and drive every part by it; run again after
    parts were joined or separated. Directions come from the parts as assembled."""
    if EXPLODE_KEY not in root:
        root[EXPLODE_KEY] = 0.0
        root.id_properties_ui(EXPLODE_KEY).update(
            min=0.0,
            soft_max=SOFT_MAX,
            description="Move every part away from the result's centre (0: assembled)",
        )
    parts = parts_of(root)
    for part in parts:
        release_part(part)
    if not parts:
        return
    centres = [rest_centre(part) for part in parts]
    middle = bounding_centre(centres)
    for part, centre in zip(parts, centres, strict=True):
        _drive_part(part, root, centre - middle)
    root.update_tag()


def has_explode(root: bpy.types.Object) -> bool:
    return EXPLODE_KEY in root


def set_explode(root: bpy.types.Object, amount: float) -> None:
    """Set the slider (adding it first where missing) and let the drivers follow."""
    if amount < 0:
        raise ValueError(f"the explode amount must be 0 or more, not {amount}")
    if not has_explode(root):
        add_explode(root)
    root[EXPLODE_KEY] = float(amount)
    root.update_tag()  # a custom property set from Python does not tell the drivers itself


def release_part(part: bpy.types.Object) -> None:
    """Take the explode drivers off `part` and put it back where it was assembled."""
    part.driver_remove("delta_location")
    part.delta_location = (0.0, 0.0, 0.0)


def bounding_centre(points: list[Vector]) -> Vector:
    low = Vector(min(p[i] for p in points) for i in range(3))
    high = Vector(max(p[i] for p in points) for i in range(3))
    return (low + high) / 2


def _drive_part(part: bpy.types.Object, root: bpy.types.Object, offset: Vector) -> None:
    for axis, fcurve in enumerate(part.driver_add("delta_location")):
        driver = fcurve.driver
        driver.type = "SCRIPTED"
        variable = driver.variables.new()
        variable.name = DRIVER_VARIABLE
        variable.type = "SINGLE_PROP"
        variable.targets[0].id_type = "OBJECT"
        variable.targets[0].id = root
        variable.targets[0].data_path = f'["{EXPLODE_KEY}"]'
        driver.expression = f"{DRIVER_VARIABLE} * {offset[axis]!r}"
