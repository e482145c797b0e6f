"""The History panel: past generations with their preview, seed, parameters and time; import
one again, run it again (same seed or a new one), open its folder."""

from __future__ import annotations

from pathlib import Path

import bpy
import bpy.utils.previews

from ..settings import jobs_folder
from ..ui import SidebarPanel
from .history import HistoryCache, HistoryEntry

SHOWN = 10
"""Entries drawn; the rest are a click on the folder away."""

_CACHE = HistoryCache()
_PREVIEWS: dict[str, bpy.utils.previews.ImagePreviewCollection] = {}


def preview_icon(entry: HistoryEntry) -> int:
    """The icon of the entry's preview.png, loaded once (0 in the bpy module, which has no
    icons)."""
    assert entry.preview is not None
    if "history" not in _PREVIEWS:
        _PREVIEWS["history"] = bpy.utils.previews.new()
    previews = _PREVIEWS["history"]
    key = str(entry.preview)
    if key not in previews:
        previews.load(key, key, "IMAGE")
    return previews[key].icon_id


def release_previews() -> None:
    """At unregister: previews are Blender's memory, not Python's."""
    for previews in _PREVIEWS.values():
        bpy.utils.previews.remove(previews)
    _PREVIEWS.clear()
    _CACHE.forget()


def draw_entry(layout: bpy.types.UILayout, entry: HistoryEntry) -> None:
    box = layout.box()
    row = box.row()
    if entry.preview is not None:
        row.template_icon(icon_value=preview_icon(entry), scale=3.0)
    column = row.column(align=True)
    column.label(text=entry.title)
    column.label(text=entry.details)
    buttons = column.row(align=True)
    folder = str(entry.folder)
    buttons.operator("partpacker.history_import", text="", icon="IMPORT").folder = folder
    same = buttons.operator("partpacker.history_rerun", text="", icon="FILE_REFRESH")
    same.folder, same.new_seed = folder, False
    new = buttons.operator("partpacker.history_rerun", text="", icon="MOD_NOISE")
    new.folder, new.new_seed = folder, True
    buttons.operator("wm.path_open", text="", icon="FILE_FOLDER").filepath = folder


def draw_history(layout: bpy.types.UILayout, jobs: Path) -> None:
    entries = _CACHE.entries(jobs)
    if not entries:
        layout.label(text="No generations yet", icon="INFO")
        return
    for entry in entries[:SHOWN]:
        draw_entry(layout, entry)
    if len(entries) > SHOWN:
        layout.label(text=f"{len(entries) - SHOWN} older in the jobs folder")
    layout.operator("wm.path_open", text="Open Jobs Folder", icon="FILE_FOLDER").filepath = str(
        jobs
    )


class PARTPACKER_PT_history(SidebarPanel, bpy.types.Panel):
    bl_label = "History"
    bl_idname = "PARTPACKER_PT_history"
    bl_parent_id = "PARTPACKER_PT_main"
    bl_options = {"DEFAULT_CLOSED"}  # noqa: RUF012 (Blender reads a set)

    def draw(self, context: bpy.types.Context) -> None:
        draw_history(self.layout, jobs_folder(context))


CLASSES = (PARTPACKER_PT_history,)
