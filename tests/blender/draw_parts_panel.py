"""Draw the parts panel and its list rows with real layouts (see draw_panels.py for why this
runs in a process of its own). The list itself is only written down: template_list crashes in a
popup; its rows are drawn one by one, and its filter is called as the list calls it.

    python draw_parts_panel.py OUT.json
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path
from types import SimpleNamespace

os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="partpacker-draw-")

import bpy  # after BLENDER_USER_RESOURCES is set
from addon_setup import REPO_ROOT, enable_addon
from draw_panels import RecordingLayout
from helpers import parts_arrays, sample_parts, write_npz

ROBOT = REPO_ROOT / "examples" / "robot.png"
SHOWN = 1 << 30
"""UIList.bitflag_filter_item (Blender's UILST_FLT_ITEM), which only a list instance has."""


class ListRecordingLayout(RecordingLayout):
    def template_list(self, *args, **kwargs) -> None:
        texts = [a for a in args if isinstance(a, str)]
        self._record.append({"call": "template_list", "args": texts, "text": None, "icon": None})


def draw_scenarios(addon, layout: bpy.types.UILayout, context) -> dict[str, list]:
    panels = addon.parts.panels
    drawn: dict[str, list] = {}

    def draw(name: str, draw_function) -> None:
        record: list[dict] = []
        try:
            draw_function(ListRecordingLayout(layout, record))
        except Exception:  # the test reports it
            record.append({"call": "EXCEPTION", "args": [traceback.format_exc()], "text": None})
        drawn[name] = record

    npz = write_npz(Path(tempfile.mkdtemp()) / "parts.npz", parts_arrays(*sample_parts()))
    result = addon.importer.import_parts(npz, context.scene, stem="robot")
    first, second, _ = result.parts
    for obj in result.parts:  # a result arrives selected: the rows start unselected here
        obj.select_set(False)
    context.view_layer.objects.active = first
    drawn["poll"] = [{"call": "poll", "text": panels.PARTPACKER_PT_parts.poll(context)}]
    draw("panel", lambda layout: panels.draw_parts_panel(layout, context))
    listed = SimpleNamespace(bitflag_filter_item=SHOWN)
    flags, _ = panels.PARTPACKER_UL_parts.filter_items(listed, context, bpy.data, "objects")
    shown = [o.name for o, flag in zip(bpy.data.objects, flags, strict=True) if flag]
    drawn["listed"] = [{"call": "filter_items", "args": shown, "text": None}]
    draw("row", lambda layout: panels.draw_part_row(layout, second, result.root))
    second.select_set(True)
    addon.parts.editing.toggle_isolated(second, result.root)
    draw("row_isolated", lambda layout: panels.draw_part_row(layout, second, result.root))
    draw("row_hidden", lambda layout: panels.draw_part_row(layout, first, result.root))
    del result.root[addon.parts.explode.EXPLODE_KEY]
    draw("panel_without_slider", lambda layout: panels.draw_parts_panel(layout, context))
    draw_sequence_scenarios(addon, draw, context)
    draw_history_scenarios(addon, draw)
    draw("image_sources", addon.parts.image_source_ui.draw_image_sources)
    context.view_layer.objects.active = None
    drawn["poll_nothing"] = [{"call": "poll", "text": panels.PARTPACKER_PT_parts.poll(context)}]
    return drawn


def draw_sequence_scenarios(addon, draw, context) -> None:
    """The Variants & Batch panel without a sequence, while one runs, after one ended."""
    sequences, panel = addon.parts.sequence, addon.parts.sequence_panel
    draw("sequence_none", lambda layout: panel.draw_sequence_panel(layout, context))
    items = [sequences.SequenceItem(f"seed {seed}", {}, (0, 0, 0)) for seed in (7, 8, 9)]
    running = sequences.JobSequence("variants", items)
    items[0].status, items[1].status, running.running = "done", "running", items[1]
    sequences.set_current_sequence(running)
    draw("sequence_running", lambda layout: panel.draw_sequence_panel(layout, context))
    items[1].status, items[2].status = "failed", "done"
    items[1].error = "the GPU ran out of memory (lower the grid resolution)"
    running.running = None
    draw("sequence_ended", lambda layout: panel.draw_sequence_panel(layout, context))
    sequences.set_current_sequence(None)


def draw_history_scenarios(addon, draw) -> None:
    """The History panel with no jobs folder, and with one finished job and one running."""
    panel = addon.parts.history_panel
    jobs = Path(tempfile.mkdtemp()) / "jobs"
    draw("history_empty", lambda layout: panel.draw_history(layout, jobs))
    job = jobs / "20261202-101010_robot_abcdef"
    job.mkdir(parents=True)
    (jobs / "20261202-101111_chair_123456").mkdir()
    write_npz(job / "parts.npz", parts_arrays(*sample_parts()))
    shutil.copy(ROBOT, job / "preview.png")
    record = {"image": "/x/robot.png", "seed": 5, "params": {"steps": 4, "grid_res": 64}}
    (job / "result.json").write_text(json.dumps(record))
    draw("history", lambda layout: panel.draw_history(layout, jobs))


def main(output: Path) -> None:
    addon = enable_addon()

    def popup(menu, context) -> None:
        try:
            output.write_text(json.dumps(draw_scenarios(addon, menu.layout, context), indent=1))
        except Exception:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            os._exit(0)

    bpy.context.window_manager.popup_menu(popup, title="PartPacker")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
