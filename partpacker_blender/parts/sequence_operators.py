"""Operators for variants and batches: start one, cancel it, dismiss its summary, keep one
variant."""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import IntProperty, StringProperty

from ..client import BackendUnavailable, BusyError
from ..image_input import ImageInputError
from ..importer import find_result_root
from ..problems import report_problem
from .batch import batch_sequence
from .sequence import JobSequence, current_sequence, set_current_sequence
from .sequence_runner import start_sequence
from .variants import MAX_VARIANTS, keep_variant, siblings, variant_sequence


def _run(operator: bpy.types.Operator, context, make_sequence) -> set[str]:
    try:
        sequence: JobSequence = make_sequence()
        start_sequence(sequence, context)
    except (ImageInputError, BackendUnavailable) as error:
        return report_problem(operator, error.message, error.hint)
    except BusyError:
        return report_problem(
            operator, "a job is already running", "wait for it to finish or cancel it"
        )
    if sequence.ended:
        kind = "error" if sequence.failures() else "info"
        operator.report({kind.upper()}, "; ".join(sequence.summary()))
    return {"FINISHED"}


class PARTPACKER_OT_generate_variants(bpy.types.Operator):
    """Generate the image several times with different seeds, the results side by side"""

    bl_idname = "partpacker.generate_variants"
    bl_label = "Generate Variants"

    count: IntProperty(name="Variants", min=1, max=MAX_VARIANTS, options={"SKIP_SAVE"})

    def execute(self, context: bpy.types.Context) -> set[str]:
        count = self.count or context.window_manager.partpacker_parts.variant_count
        return _run(self, context, lambda: variant_sequence(context, count, {}))


class PARTPACKER_OT_generate_batch(bpy.types.Operator):
    """Generate every image of the folder in turn, with the panel's settings"""

    bl_idname = "partpacker.generate_batch"
    bl_label = "Generate Batch"

    directory: StringProperty(subtype="DIR_PATH", options={"SKIP_SAVE"})

    def execute(self, context: bpy.types.Context) -> set[str]:
        folder = self.directory or context.window_manager.partpacker_parts.batch_folder
        if not folder:
            return report_problem(self, "no batch folder is chosen", "pick a folder of images")
        return _run(self, context, lambda: batch_sequence(context, Path(folder), {}))


class PARTPACKER_OT_cancel_sequence(bpy.types.Operator):
    """Cancel the running job and the ones still waiting"""

    bl_idname = "partpacker.cancel_sequence"
    bl_label = "Cancel All"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        sequence = current_sequence()
        return sequence is not None and not sequence.ended

    def execute(self, context: bpy.types.Context) -> set[str]:
        current_sequence().cancel()
        return {"FINISHED"}


class PARTPACKER_OT_dismiss_sequence(bpy.types.Operator):
    """Clear the summary of the last variants or batch"""

    bl_idname = "partpacker.dismiss_sequence"
    bl_label = "Dismiss"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        sequence = current_sequence()
        return sequence is not None and sequence.ended

    def execute(self, context: bpy.types.Context) -> set[str]:
        set_current_sequence(None)
        return {"FINISHED"}


class PARTPACKER_OT_keep_variant(bpy.types.Operator):
    """Keep the selected variant and delete the other variants generated with it"""

    bl_idname = "partpacker.keep_variant"
    bl_label = "Keep This Variant"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a set)

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        root = find_result_root(context.active_object)
        return root is not None and bool(siblings(root))

    def execute(self, context: bpy.types.Context) -> set[str]:
        root = find_result_root(context.active_object)
        self.report({"INFO"}, f"{keep_variant(root)} other variant(s) deleted")
        return {"FINISHED"}


CLASSES = (
    PARTPACKER_OT_generate_variants,
    PARTPACKER_OT_generate_batch,
    PARTPACKER_OT_cancel_sequence,
    PARTPACKER_OT_dismiss_sequence,
    PARTPACKER_OT_keep_variant,
)
