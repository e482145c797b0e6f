"""Operators of the History panel: import a past generation again, or run it again."""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import BoolProperty, StringProperty

from ..generation import import_options, start_generation
from ..job_folder import JobFolderError, import_job_folder
from ..operators import _run_task
from ..parts_file import PartsFileError
from ..problems import report_problem
from .history import history_entry


class HistoryOperator:
    folder: StringProperty(name="Job Folder", subtype="DIR_PATH", options={"SKIP_SAVE"})


class PARTPACKER_OT_history_import(HistoryOperator, bpy.types.Operator):
    """Import this generation's parts again"""

    bl_idname = "partpacker.history_import"
    bl_label = "Import Again"
    bl_options = {"UNDO"}  # noqa: RUF012 (Blender reads a set)

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            import_job_folder(Path(self.folder), context.scene, import_options(context))
        except (JobFolderError, PartsFileError) as error:
            return report_problem(self, str(error))
        return {"FINISHED"}


class PARTPACKER_OT_history_rerun(HistoryOperator, bpy.types.Operator):
    """Generate again from this generation's image and settings"""

    bl_idname = "partpacker.history_rerun"
    bl_label = "Generate Again"

    new_seed: BoolProperty(
        name="New Seed", description="Draw a new seed instead of reusing this one's"
    )

    @classmethod
    def description(cls, context, properties) -> str:
        seed = "with a new seed" if properties.new_seed else "with the same seed"
        return f"Generate again from this generation's image and settings, {seed}"

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            entry = history_entry(Path(self.folder))
        except (JobFolderError, OSError) as error:
            return report_problem(self, f"{self.folder} cannot be run again: {error}")
        given = entry.rerun_overrides(self.new_seed)
        return _run_task(self, lambda: start_generation(context, given))


CLASSES = (PARTPACKER_OT_history_import, PARTPACKER_OT_history_rerun)
