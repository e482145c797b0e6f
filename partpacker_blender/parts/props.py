"""The parts tools' panel state (`WindowManager.partpacker_parts`): the parts list's active row
(which is the active object, so clicking a row selects that part), the number of variants, the
batch folder."""

from __future__ import annotations

import bpy

from .editing import select_only
from .variants import MAX_VARIANTS


def _active_index(_settings) -> int:
    active = bpy.context.view_layer.objects.active
    return -1 if active is None else bpy.data.objects.find(active.name)


def _activate(_settings, index: int) -> None:
    if 0 <= index < len(bpy.data.objects):
        select_only(bpy.data.objects[index])


class PARTPACKER_PG_parts(bpy.types.PropertyGroup):
    active_part: bpy.props.IntProperty(
        name="Active Part",
        description="The part selected in the list",
        get=_active_index,
        set=_activate,
    )
    variant_count: bpy.props.IntProperty(
        name="Variants",
        description="How many seeds of the image to generate, one after another",
        default=4,
        min=1,
        max=MAX_VARIANTS,
    )
    batch_folder: bpy.props.StringProperty(
        name="Batch Folder",
        subtype="DIR_PATH",
        description="A folder of images: each is generated in turn with the panel's settings",
    )


CLASSES = (PARTPACKER_PG_parts,)


def register_properties() -> None:
    bpy.types.WindowManager.partpacker_parts = bpy.props.PointerProperty(type=PARTPACKER_PG_parts)


def unregister_properties() -> None:
    del bpy.types.WindowManager.partpacker_parts
