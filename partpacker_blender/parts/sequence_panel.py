"""The Variants & Batch panel: how many variants, which folder, and the sequence's progress
(which job of how many runs) or, once it has ended, its summary."""

from __future__ import annotations

import bpy

from ..problems import sentence
from ..ui import SidebarPanel
from .sequence import JobSequence, current_sequence

JOB_WORDS = {"variants": "Variant", "batch": "Image"}


def sequence_status(sequence: JobSequence) -> str:
    """ "Variant 2 of 4: seed 42" while running."""
    item = sequence.running or sequence.items[sequence.position - 1]
    return f"{JOB_WORDS[sequence.kind]} {sequence.position} of {len(sequence.items)}: {item.label}"


def draw_sequence(layout: bpy.types.UILayout, sequence: JobSequence) -> None:
    box = layout.box()
    if not sequence.ended:
        box.label(text=sequence_status(sequence), icon="SORTTIME")
        box.operator("partpacker.cancel_sequence", icon="CANCEL")
        return
    first, *failures = sequence.summary()
    box.label(text=sentence(first), icon="ERROR" if failures else "CHECKMARK")
    for line in failures:
        box.label(text=line)
    box.operator("partpacker.dismiss_sequence", icon="X")


def draw_sequence_panel(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    settings = context.window_manager.partpacker_parts
    row = layout.row(align=True)
    row.prop(settings, "variant_count")
    row.operator("partpacker.generate_variants", icon="MOD_ARRAY")
    layout.prop(settings, "batch_folder", text="")
    layout.operator("partpacker.generate_batch", icon="FILE_FOLDER")
    sequence = current_sequence()
    if sequence is not None:
        draw_sequence(layout, sequence)


class PARTPACKER_PT_sequences(SidebarPanel, bpy.types.Panel):
    bl_label = "Variants & Batch"
    bl_idname = "PARTPACKER_PT_sequences"
    bl_parent_id = "PARTPACKER_PT_main"

    def draw(self, context: bpy.types.Context) -> None:
        draw_sequence_panel(self.layout, context)


CLASSES = (PARTPACKER_PT_sequences,)
