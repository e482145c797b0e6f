"""The parts panel (Selected Result > Parts): the explode slider, a list of the result's parts
(colour, name, faces, select, show, isolate), join and separate, export."""

from __future__ import annotations

import bpy

from ..importer import find_result_root
from ..ui import SidebarPanel
from .editing import is_isolated
from .explode import EXPLODE_KEY, has_explode
from .result_parts import parts_of
from .variants import siblings


class PARTPACKER_UL_parts(bpy.types.UIList):
    """The parts of the selected result, out of all objects (a list needs a collection
    property, and an Empty's children are not one)."""

    def filter_items(self, context, data, propname):
        root = find_result_root(context.active_object)
        parts = set(parts_of(root)) if root is not None else set()
        objects = getattr(data, propname)
        return [self.bitflag_filter_item if o in parts else 0 for o in objects], []

    def draw_item(self, context, layout, data, item, icon, active_data, active_prop, index=0):
        draw_part_row(layout, item, find_result_root(item))


def draw_part_row(layout: bpy.types.UILayout, part: bpy.types.Object, root) -> None:
    row = layout.row(align=True)
    material = part.active_material if part.material_slots else None
    if material is not None:
        swatch = row.row()
        swatch.ui_units_x = 1.2
        swatch.prop(material, "diffuse_color", text="")
    row.prop(part, "name", text="", emboss=False)
    faces = row.row()
    faces.alignment = "RIGHT"
    faces.ui_units_x = 2.4  # the name gets the rest of the sidebar's width
    faces.label(text=f"{len(part.data.polygons):,}")
    selected = part.select_get()
    for operator, icon in (
        ("partpacker.part_select", "RESTRICT_SELECT_OFF" if selected else "RESTRICT_SELECT_ON"),
        ("partpacker.part_visibility", "HIDE_ON" if part.hide_get() else "HIDE_OFF"),
        ("partpacker.part_isolate", "SOLO_ON" if is_isolated(part, root) else "SOLO_OFF"),
    ):
        row.operator(operator, text="", icon=icon, emboss=False).part = part.name


def draw_parts_panel(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    root = find_result_root(context.active_object)
    assert root is not None, "poll() found it"
    if has_explode(root):
        layout.prop(root, f'["{EXPLODE_KEY}"]', text="Explode", slider=True)
    else:
        layout.operator("partpacker.add_explode", icon="FULLSCREEN_ENTER")
    layout.template_list(
        "PARTPACKER_UL_parts",
        "",
        bpy.data,
        "objects",
        context.window_manager.partpacker_parts,
        "active_part",
        rows=5,
    )
    row = layout.row(align=True)
    row.operator("partpacker.join_parts", icon="AUTOMERGE_ON")
    row.operator("partpacker.separate_parts", icon="MOD_EXPLODE")
    layout.operator("partpacker.export_parts", icon="EXPORT")
    if siblings(root):
        layout.operator("partpacker.keep_variant", icon="CHECKMARK")


class PARTPACKER_PT_parts(SidebarPanel, bpy.types.Panel):
    bl_label = "Parts"
    bl_idname = "PARTPACKER_PT_parts"
    bl_parent_id = "PARTPACKER_PT_result"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return find_result_root(context.active_object) is not None

    def draw(self, context: bpy.types.Context) -> None:
        draw_parts_panel(self.layout, context)


CLASSES = (PARTPACKER_UL_parts, PARTPACKER_PT_parts)
