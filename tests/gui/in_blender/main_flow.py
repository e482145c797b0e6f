"""The main GUI scenario, in one Blender run: the preferences and Check Backend (and a switch of
the weights source), a missing image, Prepare (and a Prepare that fails), a fully transparent
image and its Details, Generate through the panel, Undo and Redo, Generate Again, Cancel,
Generate at the 3D cursor, Import Job Folder through its file browser, Undo.
tests/gui/test_gui_main_flow.py asserts on what this writes; screenshots go beside it."""

import os
import shutil
import signal
import sys
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
    xdotool,
)

QUICK = {"steps": 2, "grid_res": 32}
"""A job that finishes in seconds with the tiny weights."""
SLOW_STEPS = 100
"""Sampler steps of a job that is still running when it is cancelled."""


def main_flow(ui: Harness):
    configure_backend(ui.settings)
    yield from ui.show_partpacker_tab()
    yield from ui.fresh_panels()
    ui.checkpoint("start")
    yield from preferences(ui)
    yield from missing_image(ui)
    yield from prepare(ui)
    yield from prepare_fails(ui)
    yield from transparent_image(ui)
    yield from first_generation(ui)
    yield from undo_redo(ui)
    yield from generate_again(ui)
    yield from cancel(ui)
    yield from generate_at_cursor(ui)
    yield from import_job_folder(ui)


def preferences(ui: Harness):
    """Edit > Preferences > Add-ons > PartPacker, expanded, then Check Backend until its report
    shows."""
    with bpy.context.temp_override(window=ui.window()):
        bpy.ops.screen.userpref_show(section="ADDONS")
    yield from ui.until(lambda: preferences_window() is not None, "the preferences window", 30)
    window = preferences_window()
    bpy.context.window_manager.addon_search = "PartPacker"
    area = window.screen.areas[0]
    with bpy.context.temp_override(window=window, area=area):
        bpy.ops.preferences.addon_expand(module=ADDON)
    xdotool("search", "--name", "^Preferences$", "windowmove", "%@", "0", "0")
    xdotool("search", "--name", "^Preferences$", "windowsize", "%@", "1100", "880")
    yield 1.0
    region = next(r for r in area.regions if r.type == "WINDOW")
    where = {"window": window, "area": area, "region": region}
    ui.observations["check_backend"] = ui.press("partpacker.check_backend", where)
    reported = lambda: ui.panel_shows("device", "PARTPACKER_AddonPreferences")  # noqa: E731
    yield from ui.until(reported, "the backend check's report", 120)
    yield from ui.screenshot("preferences")
    ui.checkpoint("preferences")
    ui.observations["preferences_width"] = region.width
    prefs = bpy.context.preferences.addons[ADDON].preferences
    prefs.weights_source = "HF_CACHE"  # as a user picks it in the list
    cache = lambda: ui.panel_shows("Hugging Face", "PARTPACKER_AddonPreferences")  # noqa: E731
    yield from ui.until(lambda: checked_again() and cache(), "the check of the cache", 120)
    ui.checkpoint("preferences_cache")
    prefs.weights_source = "FOLDER"
    yield from ui.until(lambda: checked_again() and reported(), "the check of the folder", 120)
    ui.checkpoint("preferences_folder_again")
    ui.mouse(550, 500)
    xdotool("click", "--repeat", "25", "5")  # the wheel, down to the setup section
    yield 1.0
    yield from ui.screenshot("preferences_setup")
    ui.mouse(300, 500)
    with bpy.context.temp_override(window=window):
        bpy.ops.wm.window_close()
    yield from ui.until(lambda: preferences_window() is None, "the preferences to close", 20)


def checked_again() -> bool:
    """A backend check has reported, and none runs."""
    check = sys.modules[f"{ADDON}.setup.backend_check"].current()
    setup = sys.modules[f"{ADDON}.setup.state"].current()
    return check.report is not None and setup.activity is None


def preferences_window():
    for window in bpy.context.window_manager.windows:
        if any(area.type == "PREFERENCES" for area in window.screen.areas):
            return window
    return None


def missing_image(ui: Harness):
    set_panel(image_source="FILE", image_path=ui.settings["missing_image"])
    ui.observations["missing_image"] = ui.press("partpacker.generate")
    yield from ui.fresh_panels()
    ui.checkpoint("missing_image")


def prepare(ui: Harness):
    """Prepare: the segmentation the model will see, as a preview in the panel."""
    set_panel(image_path=ui.settings["robot_image"])
    ui.observations["prepare"] = ui.press("partpacker.prepare")
    yield from ui.wait_while_busy("prepare")
    yield from ui.fresh_panels()
    ui.checkpoint("prepared")


def prepare_fails(ui: Harness):
    """Prepare a picture, then replace the file by a fully transparent one and Prepare again:
    the failed Prepare takes the old preview away."""
    picture = ui.output / "picture.png"
    shutil.copy(ui.settings["robot_image"], picture)
    set_panel(image_path=str(picture))
    ui.observations["prepare_picture"] = ui.press("partpacker.prepare")
    yield from ui.wait_while_busy("prepare")
    yield from ui.fresh_panels()
    ui.checkpoint("picture_prepared")
    shutil.copy(ui.settings["transparent_image"], picture)
    ui.observations["prepare_transparent"] = ui.press("partpacker.prepare")
    yield from ui.wait_while_busy("prepare")
    yield from ui.fresh_panels()
    ui.checkpoint("prepare_failed")
    set_panel(image_path=ui.settings["robot_image"])
    ui.observations["prepare_again"] = ui.press("partpacker.prepare")
    yield from ui.wait_while_busy("prepare")


def transparent_image(ui: Harness):
    set_panel(image_path=ui.settings["transparent_image"], **QUICK)
    ui.observations["transparent_image"] = ui.press("partpacker.generate")
    yield from ui.wait_while_busy("transparent_image")
    yield 1.0  # what the panel shows by itself, a second later
    ui.checkpoint("transparent_image_as_left")
    yield from ui.fresh_panels()
    yield from ui.screenshot("bad_image_error")
    ui.checkpoint("transparent_image")
    yield from details(ui)


def details(ui: Harness):
    """Details under the error: a window of its own with the whole story in a text."""
    windows = len(bpy.context.window_manager.windows)
    ui.observations["details"] = ui.press("partpacker.show_details")
    yield from ui.until(lambda: text_window() is not None, "the details' window", 20)
    window, area = text_window()
    text = area.spaces.active.text
    ui.observations["details_text"] = {"name": text.name, "content": text.as_string()}
    ui.observations["details_windows"] = len(bpy.context.window_manager.windows) - windows
    yield 1.0
    yield from ui.screenshot("details")
    with bpy.context.temp_override(window=window):
        bpy.ops.wm.window_close()
    yield from ui.until(lambda: text_window() is None, "the details' window to close", 20)


def text_window():
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == "TEXT_EDITOR":
                return window, area
    return None


def first_generation(ui: Harness):
    """Generate from the panel with a fixed seed; the 3D cursor where a new file has it."""
    set_panel(image_path=ui.settings["robot_image"], randomize_seed=False, seed=7, **QUICK)
    ui.observations["generate"] = ui.press("partpacker.generate")
    ui.observations["generate_busy_at_once"] = addon_state()["busy"]
    yield from ui.wait_while_busy("generate")
    ui.checkpoint("generated_as_left")
    ui.observations["reports_after_generate"] = reports(ui)
    yield from ui.screenshot("new_result")
    yield from ui.fresh_panels()
    ui.checkpoint("generated")


def reports(ui: Harness) -> list[str]:
    """The reports of this session as the Info editor lists them (the status bar shows the
    last): the timeline turned into an Info editor for a moment, its reports copied."""
    area = next(a for a in ui.window().screen.areas if a.type == "DOPESHEET_EDITOR")
    was = area.ui_type
    area.ui_type = "INFO"
    try:
        region = next(r for r in area.regions if r.type == "WINDOW")
        with bpy.context.temp_override(window=ui.window(), area=area, region=region):
            bpy.ops.info.select_all(action="SELECT")
            bpy.ops.info.report_copy()
        return bpy.context.window_manager.clipboard.splitlines()
    finally:
        area.ui_type = was


def undo_redo(ui: Harness):
    with bpy.context.temp_override(window=ui.window()):
        ui.observations["undo"] = sorted(bpy.ops.ed.undo())
    yield 0.5
    ui.checkpoint("undone")
    with bpy.context.temp_override(window=ui.window()):
        ui.observations["redo"] = sorted(bpy.ops.ed.redo())
    yield 0.5
    ui.checkpoint("redone")


def select_only(name: str) -> None:
    """Click on the object in the Outliner: selected alone, and active."""
    for obj in bpy.context.selected_objects:
        obj.select_set(False)
    obj = bpy.data.objects[name]
    obj.select_set(True)
    bpy.context.view_layer.objects.active = obj


def generate_again(ui: Harness):
    select_only("robot_7")
    yield from ui.fresh_panels()
    ui.checkpoint("result_selected")
    ui.observations["generate_again"] = ui.press("partpacker.rerun")
    yield from ui.wait_while_busy("generate_again")
    yield from ui.fresh_panels()
    ui.checkpoint("generated_again")
    ui.observations["reports_after_generate_again"] = reports(ui)


def cancel(ui: Harness):
    """A long job, frozen while Cancel is pressed (so that the cancel surely lands mid-job),
    then let go."""
    set_panel(steps=SLOW_STEPS, randomize_seed=False, seed=3)
    ui.observations["slow_generate"] = ui.press("partpacker.generate")
    yield from ui.until(lambda: ui.panel_shows("Sampling"), "the panel to show sampling", 180)
    workers = worker_pids()
    for pid in workers:
        os.kill(pid, signal.SIGSTOP)
    try:
        ui.observations["cancel"] = ui.press("partpacker.cancel")
        yield from ui.fresh_panels()
        ui.checkpoint("cancelling")
    finally:
        for pid in workers:
            os.kill(pid, signal.SIGCONT)
    yield from ui.wait_while_busy("cancel", timeout=120)
    yield from ui.fresh_panels()
    ui.checkpoint("cancelled")


def generate_at_cursor(ui: Harness):
    bpy.context.scene.cursor.location = (0.0, 4.0, 0.5)
    set_panel(seed=11, size=3.0, **QUICK)
    ui.observations["generate_at_cursor"] = ui.press("partpacker.generate")
    yield from ui.wait_while_busy("generate_at_cursor")
    yield from ui.fresh_panels()
    ui.checkpoint("generated_at_cursor")


def import_job_folder(ui: Harness):
    """Output > Import Job Folder: its file browser, the first result's folder, Accept; then
    Undo."""
    folder = bpy.data.objects["robot_7"]["partpacker"]["job_folder"]
    ui.observations["imported_folder"] = folder
    ui.observations["import_folder"] = ui.press("partpacker.import_folder")
    yield from ui.until(lambda: file_browser() is not None, "the file browser", 30)
    window, area = file_browser()
    area.spaces.active.params.directory = bpy.path.abspath(folder).encode()
    yield 0.5
    region = next(r for r in area.regions if r.type == "WINDOW")
    with bpy.context.temp_override(window=window, area=area, region=region):
        ui.observations["file_browser_accept"] = sorted(bpy.ops.file.execute())
    yield from ui.until(lambda: file_browser() is None, "the file browser to close", 30)
    yield from ui.fresh_panels()
    ui.checkpoint("imported")
    ui.observations["reports_after_import"] = reports(ui)
    yield from ui.screenshot("imported")
    with bpy.context.temp_override(window=ui.window()):
        ui.observations["undo_import"] = sorted(bpy.ops.ed.undo())
    yield 0.5
    ui.checkpoint("import_undone")


def file_browser():
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == "FILE_BROWSER":
                return window, area
    return None


Harness(settings_from_argv()).run(main_flow)
