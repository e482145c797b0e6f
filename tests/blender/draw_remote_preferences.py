"""Draw the preferences' backend choice and the panel's status line for each choice, with real
layouts (see draw_panels.py for why in a process of its own).

    python draw_remote_preferences.py OUT.json
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
from pathlib import Path
from types import SimpleNamespace

os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="partpacker-draw-")

import bpy  # after BLENDER_USER_RESOURCES is set
from addon_setup import addon_preferences, enable_addon
from draw_panels import RecordingLayout


def draw_choices(addon, layout: bpy.types.UILayout, context) -> dict[str, list]:
    prefs = addon_preferences()
    drawn: dict[str, list] = {}

    def draw(name: str) -> None:
        record: list[dict] = []
        panel = SimpleNamespace(layout=RecordingLayout(layout, record))
        try:
            addon.preferences.draw_all(prefs, panel.layout, context)
            addon.ui.PARTPACKER_PT_main.draw(panel, context)
        except Exception:  # the test reports it
            record.append({"call": "EXCEPTION", "args": [traceback.format_exc()], "text": None})
        drawn[name] = record

    draw("local")
    prefs.backend_kind, prefs.server_url = "SERVER", "http://gpu-box.studio.example:7860"
    draw("server_offline")
    bpy.context.preferences.system.use_online_access = True
    draw("server")
    prefs.backend_kind = "SPACE"
    draw("space_without_saved_token")
    home = Path(tempfile.mkdtemp())
    (home / "token").write_text("hf_abc\n")
    os.environ["HF_HOME"] = str(home)
    draw("space_with_saved_token")
    return drawn


def main(output: Path) -> None:
    os.environ.pop("HF_TOKEN", None)
    os.environ["HF_HOME"] = tempfile.mkdtemp()  # no token saved
    addon = enable_addon()

    def popup(menu, context) -> None:
        try:
            output.write_text(json.dumps(draw_choices(addon, menu.layout, context), indent=1))
        finally:
            sys.stdout.flush()
            os._exit(0)

    bpy.context.window_manager.popup_menu(popup, title="PartPacker")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
