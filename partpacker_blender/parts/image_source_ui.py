"""Image from Blender: one button per source (image_sources.py); the PNG it makes becomes the
panel's input image (an image datablock), ready for Prepare and Generate."""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty

from ..image_input import ImageInputError
from ..problems import report_problem
from ..ui import SidebarPanel
from .image_sources import SOURCES, image_from_blender


class PARTPACKER_OT_image_from_blender(bpy.types.Operator):
    """Use an image from Blender as the input image"""

    bl_idname = "partpacker.image_from_blender"
    bl_label = "Image from Blender"
    bl_options = {"UNDO"}  # noqa: RUF012 (Blender reads a set)

    source: EnumProperty(
        name="Source",
        items=[
            (key, label, text, icon, i)
            for i, (key, (label, text, icon)) in enumerate(SOURCES.items())
        ],
    )

    @classmethod
    def description(cls, context, properties) -> str:
        text = SOURCES[properties.source][1]
        return f"Use {text[:1].lower()}{text[1:]} as the input image"

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            path = image_from_blender(self.source, context)
        except ImageInputError as error:
            return report_problem(self, error.message, error.hint)
        settings = context.scene.partpacker
        settings.image = bpy.data.images.load(str(path), check_existing=True)
        settings.image_source = "IMAGE"
        self.report({"INFO"}, f"Input image: {path.name}")
        return {"FINISHED"}


def draw_image_sources(layout: bpy.types.UILayout) -> None:
    grid = layout.grid_flow(columns=2, align=True)
    for key, (label, _, icon) in SOURCES.items():
        grid.operator("partpacker.image_from_blender", text=label, icon=icon).source = key


class PARTPACKER_PT_image_sources(SidebarPanel, bpy.types.Panel):
    bl_label = "Image from Blender"
    bl_idname = "PARTPACKER_PT_image_sources"
    bl_parent_id = "PARTPACKER_PT_main"
    bl_options = {"DEFAULT_CLOSED"}  # noqa: RUF012 (Blender reads a set)

    def draw(self, context: bpy.types.Context) -> None:
        draw_image_sources(self.layout)


CLASSES = (PARTPACKER_OT_image_from_blender, PARTPACKER_PT_image_sources)
