"""Operators of the parts panel: each finds the result, calls one function of editing.py,
explode.py or export.py, and reports."""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import EnumProperty, StringProperty

from ..importer import find_result_root
from ..problems import report_problem
from . import editing
from .explode import add_explode
from .export import FORMATS, ExportError, export_parts
from .result_parts import parts_of


class ResultOperator:
    """Polls for a selected result; `self.root(context)` is its Empty."""

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return find_result_root(context.active_object) is not None

    @staticmethod
    def root(context: bpy.types.Context) -> bpy.types.Object:
        root = find_result_root(context.active_object)
        assert root is not None, "poll() found it"
        return root


class PartOperator(ResultOperator):
    """Acts on the part named `part` (a row of the parts list)."""

    part: StringProperty(name="Part", options={"SKIP_SAVE"})

    def execute(self, context: bpy.types.Context) -> set[str]:
        part = bpy.data.objects.get(self.part)
        if part is None:
            return report_problem(self, f"there is no part named {self.part!r}")
        self.act_on(part, context)
        return {"FINISHED"}

    def act_on(self, part: bpy.types.Object, context: bpy.types.Context) -> None:
        raise NotImplementedError


class PARTPACKER_OT_part_select(PartOperator, bpy.types.Operator):
    """Add the part to the selection or take it out"""

    bl_idname = "partpacker.part_select"
    bl_label = "Select Part"
    bl_options = {"UNDO"}  # noqa: RUF012 (Blender reads a set)

    def act_on(self, part: bpy.types.Object, context: bpy.types.Context) -> None:
        editing.toggle_selected(part)


class PARTPACKER_OT_part_visibility(PartOperator, bpy.types.Operator):
    """Hide the part or show it again"""

    bl_idname = "partpacker.part_visibility"
    bl_label = "Hide Part"
    bl_options = {"UNDO"}  # noqa: RUF012 (Blender reads a set)

    def act_on(self, part: bpy.types.Object, context: bpy.types.Context) -> None:
        editing.toggle_hidden(part)


class PARTPACKER_OT_part_isolate(PartOperator, bpy.types.Operator):
    """Show only this part of the result; again to show every part"""

    bl_idname = "partpacker.part_isolate"
    bl_label = "Isolate Part"
    bl_options = {"UNDO"}  # noqa: RUF012 (Blender reads a set)

    def act_on(self, part: bpy.types.Object, context: bpy.types.Context) -> None:
        editing.toggle_isolated(part, self.root(context))


def _selected_parts(context: bpy.types.Context, root: bpy.types.Object) -> list:
    return [part for part in parts_of(root) if part.select_get()]


class PARTPACKER_OT_join_parts(ResultOperator, bpy.types.Operator):
    """Join the selected parts of the result into one part"""

    bl_idname = "partpacker.join_parts"
    bl_label = "Join Selected"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a set)

    def execute(self, context: bpy.types.Context) -> set[str]:
        root = self.root(context)
        try:
            joined = editing.join_parts(root, _selected_parts(context, root))
        except editing.PartsEditError as error:
            return report_problem(self, error.message, error.hint)
        self.report({"INFO"}, f"Joined into {joined.name}")
        return {"FINISHED"}


class PARTPACKER_OT_separate_parts(ResultOperator, bpy.types.Operator):
    """Split each selected part of the result into one part per connected piece"""

    bl_idname = "partpacker.separate_parts"
    bl_label = "Separate"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a set)

    def execute(self, context: bpy.types.Context) -> set[str]:
        root = self.root(context)
        try:
            pieces = editing.separate_parts(root, _selected_parts(context, root))
        except editing.PartsEditError as error:
            return report_problem(self, error.message, error.hint)
        self.report({"INFO"}, f"{len(pieces)} parts")
        return {"FINISHED"}


class PARTPACKER_OT_add_explode(ResultOperator, bpy.types.Operator):
    """Give the result an explode slider (results made before it existed have none)"""

    bl_idname = "partpacker.add_explode"
    bl_label = "Add Explode Slider"
    bl_options = {"UNDO"}  # noqa: RUF012 (Blender reads a set)

    def execute(self, context: bpy.types.Context) -> set[str]:
        add_explode(self.root(context))
        return {"FINISHED"}


class PARTPACKER_OT_export_parts(ResultOperator, bpy.types.Operator):
    """Write the selected result's parts into a folder, as the scene shows them"""

    bl_idname = "partpacker.export_parts"
    bl_label = "Export Parts"

    directory: StringProperty(subtype="DIR_PATH", options={"SKIP_SAVE"})
    file_format: EnumProperty(
        name="Format",
        items=[(key, label, text) for key, (label, text, _) in FORMATS.items()],
        default="STL",
    )

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        if not self.directory:
            return report_problem(self, "no folder is chosen", "pick a folder for the files")
        folder = Path(bpy.path.abspath(self.directory))
        try:
            paths = export_parts(self.root(context), folder, self.file_format)
        except ExportError as error:
            return report_problem(self, error.message, error.hint)
        self.report({"INFO"}, f"{len(paths)} file(s) written to {folder}")
        return {"FINISHED"}


CLASSES = (
    PARTPACKER_OT_part_select,
    PARTPACKER_OT_part_visibility,
    PARTPACKER_OT_part_isolate,
    PARTPACKER_OT_join_parts,
    PARTPACKER_OT_separate_parts,
    PARTPACKER_OT_add_explode,
    PARTPACKER_OT_export_parts,
)
