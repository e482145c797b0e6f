"""Generate on a server from the panel: the preferences set to *Server* (address and token of a
real `python -m backend web` with tiny weights, started by tests/gui/test_gui_remote.py), Prepare,
Generate and its result; then a slow job, the panel through the server's stages, and Cancel.
The real event loop drains the client's thread from its timer."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bpy
from harness import ADDON, Harness, addon_state, set_panel, settings_from_argv

SLOW_STEPS = 100


def remote_generate(ui: Harness):
    prefs = bpy.context.preferences.addons[ADDON].preferences
    prefs.backend_kind = "SERVER"
    prefs.server_url = ui.settings["server_url"]
    prefs.server_token = ui.settings["server_token"]
    yield from ui.show_partpacker_tab()
    set_panel(image_path=ui.settings["robot_image"], steps=4, grid_res=256, seed=5)
    set_panel(randomize_seed=False)
    ui.observations["prepare"] = ui.press("partpacker.prepare")
    yield from ui.wait_while_busy("prepare", 120)
    yield from ui.fresh_panels()
    ui.checkpoint("prepared")
    ui.observations["generate"] = ui.press("partpacker.generate")
    yield from ui.wait_while_busy("generate", 300)
    yield from ui.fresh_panels()
    ui.checkpoint("generated")
    yield from ui.screenshot("remote_result")
    set_panel(steps=SLOW_STEPS, seed=6)
    ui.press("partpacker.generate")
    yield from ui.until(lambda: ui.panel_shows("Sampling"), "the panel to show sampling", 180)
    yield from ui.screenshot("remote_sampling")
    ui.observations["cancel"] = ui.press("partpacker.cancel")
    yield from ui.until(lambda: not addon_state()["busy"], "the cancel", 30)
    yield from ui.fresh_panels()
    ui.checkpoint("cancelled")


Harness(settings_from_argv()).run(remote_generate)
