"""Telling the user what happened where no operator is running (a job ends in a timer): a report
in the status bar, as an operator's would be, and the line the panel shows until the next one."""

from __future__ import annotations

import logging

import bpy
from bpy.props import EnumProperty, StringProperty

log = logging.getLogger(__name__)

_latest = ""


def latest() -> str:
    """The last notice ("" before the first)."""
    return _latest


def remember(text: str) -> None:
    """`text` as the panel's notice, without a report (nowhere to show one yet)."""
    global _latest
    _latest = text
    log.info("%s", text)


def forget() -> None:
    global _latest
    _latest = ""


def announce(text: str, level: str = "INFO", operator: bpy.types.Operator | None = None) -> None:
    """`text` in the status bar (and the Info editor's log) and as the panel's notice; reported
    by `operator` where one is running."""
    global _latest
    _latest = text
    log.info("%s", text)
    if operator is not None:
        operator.report({level}, text)
        return
    windows = bpy.context.window_manager.windows
    if not windows:
        return  # background mode: the operator that waited reports it
    with bpy.context.temp_override(window=windows[0]):
        bpy.ops.partpacker.announce("INVOKE_DEFAULT", message=text, level=level)


def imported_text(part_count: int, seconds: float) -> str:
    parts = "1 part" if part_count == 1 else f"{part_count} parts"
    return f"{parts} imported in {seconds:.1f} s"


class PARTPACKER_OT_announce(bpy.types.Operator):
    """Report a message in the status bar. Invoked, it reports from its modal step: the report of
    an operator that a script calls goes to the script (and the console) only, one made in a
    modal step to the window manager, which shows it in the status bar."""

    bl_idname = "partpacker.announce"
    bl_label = "Announce"
    bl_options = {"INTERNAL"}  # noqa: RUF012 (Blender reads a set)

    message: StringProperty(options={"SKIP_SAVE"})
    level: EnumProperty(
        # No "ERROR": an operator called from Python raises on it.
        items=(("INFO", "Info", ""), ("WARNING", "Warning", "")),
        options={"SKIP_SAVE"},
    )

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        manager = context.window_manager
        self._timer = manager.event_timer_add(0.01, window=context.window)
        manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        context.window_manager.event_timer_remove(self._timer)
        return self.execute(context)

    def execute(self, context: bpy.types.Context) -> set[str]:
        self.report({self.level}, self.message)
        return {"FINISHED"}


CLASSES = (PARTPACKER_OT_announce,)
