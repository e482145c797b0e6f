"""Quit Blender while a job runs: Generate through the panel, wait until the panel shows the
sampler at work, note the worker processes, then File > Quit. tests/gui/test_gui_quit.py checks
from outside that no worker is left once Blender has gone."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    Harness,
    addon_state,
    configure_backend,
    set_panel,
    settings_from_argv,
    worker_pids,
)

SLOW_STEPS = 100


def quit_during_job(ui: Harness):
    configure_backend(ui.settings)
    yield from ui.show_partpacker_tab()
    set_panel(image_path=ui.settings["robot_image"], steps=SLOW_STEPS, grid_res=32)
    ui.observations["generate"] = ui.press("partpacker.generate")
    yield from ui.until(lambda: ui.panel_shows("Sampling"), "the panel to show sampling", 180)
    ui.observations["busy_at_quit"] = addon_state()["busy"]
    ui.checkpoint("quitting")
    yield from ui.screenshot("quitting")
    ui.observations["workers_at_quit"] = worker_pids()
    # The scenario ends here: the harness writes the observations and quits, as File > Quit does.


Harness(settings_from_argv()).run(quit_during_job)
