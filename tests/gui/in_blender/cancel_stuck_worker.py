"""Cancel with a stuck worker, in one Blender run: first the backend not set up (the panel's
button opens the add-on's preferences), then a long job whose worker is frozen for good
(SIGSTOP, never continued); while it is frozen, what draws is counted (the sidebar, and the 3D
viewport itself), then Cancel is pressed and the panel left alone until the job has ended.
tests/gui/test_gui_cancel.py asserts on what this writes."""

import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bpy
from harness import (
    ADDON,
    Harness,
    addon_state,
    configure_backend,
    set_panel,
    settings_from_argv,
    worker_pids,
)

SLOW_STEPS = 100
COUNTED_SECONDS = 3.0


def cancel_stuck_worker(ui: Harness):
    yield from ui.show_partpacker_tab()
    yield from not_set_up(ui)
    configure_backend(ui.settings)
    set_panel(image_path=ui.settings["robot_image"], steps=SLOW_STEPS, grid_res=32)
    ui.observations["generate"] = ui.press("partpacker.generate")
    yield from ui.until(lambda: ui.panel_shows("Sampling"), "the panel to show sampling", 180)
    stuck = worker_pids()
    ui.observations["stuck_workers"] = stuck
    for pid in stuck:
        os.kill(pid, signal.SIGSTOP)
    yield from count_draws(ui)  # the job runs on for sure: its worker is frozen
    pressed = time.monotonic()
    ui.observations["cancel"] = ui.press("partpacker.cancel")
    yield from ui.fresh_panels()
    ui.checkpoint("cancelling")
    yield from ui.wait_while_busy("the cancel", timeout=120)
    ui.observations["cancel_to_ended_s"] = round(time.monotonic() - pressed, 2)
    yield 1.0  # what the panel shows by itself, a second later
    ui.checkpoint("cancelled_as_left")
    ui.observations["stuck_still_running"] = [pid for pid in stuck if running(pid)]
    yield from ui.screenshot("cancelled_stuck_worker")


def not_set_up(ui: Harness):
    """No backend Python anywhere: the panel says so and offers the preferences."""
    os.environ.pop("PARTPACKER_BACKEND_PYTHON", None)
    bpy.context.preferences.addons[ADDON].preferences.backend_python = ""
    yield from ui.fresh_panels()
    ui.checkpoint("not_set_up")
    ui.observations["show_preferences"] = ui.press("partpacker.show_preferences")
    yield from ui.until(lambda: preferences_window() is not None, "the preferences window", 30)
    ui.observations["preferences_opened_at"] = {
        "section": bpy.context.preferences.active_section,
        "search": bpy.context.window_manager.addon_search,
    }
    yield 1.0
    yield from ui.screenshot("preferences_from_panel")
    with bpy.context.temp_override(window=preferences_window()):
        bpy.ops.wm.window_close()
    yield from ui.until(lambda: preferences_window() is None, "the preferences to close", 20)


def count_draws(ui: Harness):
    """Draws of the sidebar's panel and of the 3D viewport's main region while the job runs."""
    viewport = [0]

    def count_viewport_draw() -> None:
        viewport[0] += 1

    handle = bpy.types.SpaceView3D.draw_handler_add(count_viewport_draw, (), "WINDOW", "POST_PIXEL")
    panel_draws = ui.panels.draw_count
    yield COUNTED_SECONDS
    bpy.types.SpaceView3D.draw_handler_remove(handle, "WINDOW")
    ui.observations["draws_while_running"] = {
        "seconds": COUNTED_SECONDS,
        "sidebar": ui.panels.draw_count - panel_draws,
        "viewport": viewport[0],
        "busy_throughout": addon_state()["busy"],
    }


def preferences_window():
    for window in bpy.context.window_manager.windows:
        if any(area.type == "PREFERENCES" for area in window.screen.areas):
            return window
    return None


def running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


Harness(settings_from_argv()).run(cancel_stuck_worker)
