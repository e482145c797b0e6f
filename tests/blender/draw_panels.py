"""Draw every PartPacker panel and the preferences with real layouts, in several states (the
preferences' setup section in the states of a setup run).

    python draw_panels.py OUT.json

The bpy module has no region to draw into, but a popup menu hands its draw callback a real
UILayout (then crashes while showing the popup, so this runs in its own process and leaves
with os._exit once the draws are recorded). Each layout call is passed through to Blender and
recorded, so the test can see what was drawn and any exception a draw raised.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import SimpleNamespace

os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="partpacker-draw-")
os.environ.pop("PARTPACKER_BACKEND_PYTHON", None)

import bpy  # after BLENDER_USER_RESOURCES is set
from addon_setup import addon_preferences, enable_addon
from helpers import parts_arrays, sample_parts, write_npz


class RecordingLayout:
    """A real UILayout whose calls are also written down."""

    def __init__(self, layout: bpy.types.UILayout, record: list[dict]) -> None:
        object.__setattr__(self, "_layout", layout)
        object.__setattr__(self, "_record", record)

    def __getattr__(self, name: str):
        attribute = getattr(self._layout, name)
        if not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            result = attribute(*args, **kwargs)
            texts = [a for a in args if isinstance(a, str)]
            entry = {"call": name, "args": texts, "text": kwargs.get("text")}
            if kwargs.get("heading"):
                entry["heading"] = kwargs["heading"]
            if name == "label" and kwargs.get("text"):
                entry["width_px"] = text_width_px(kwargs["text"])
            self._record.append({**entry, "icon": kwargs.get("icon")})
            if isinstance(result, bpy.types.UILayout):
                return RecordingLayout(result, self._record)
            return result

        return call

    def __setattr__(self, name: str, value) -> None:
        setattr(self._layout, name, value)


def text_width_px(text: str) -> float:
    """Pixels the text takes in the UI's font at the UI's scale (as tests/gui's recorder)."""
    import blf  # importable once bpy is

    preferences = bpy.context.preferences
    scale = (preferences.system.ui_scale or 1.0) * preferences.system.pixel_size  # 0 in bpy
    blf.size(0, preferences.ui_styles[0].widget.points * scale)
    return round(blf.dimensions(0, text)[0], 1)


def draw_scenarios(addon, layout: bpy.types.UILayout, context) -> dict[str, list]:
    session = addon.session.current()
    settings = context.scene.partpacker
    drawn: dict[str, list] = {}

    def draw(name: str, draw_function) -> None:
        record: list[dict] = []
        try:
            draw_function(SimpleNamespace(layout=RecordingLayout(layout, record)), context)
        except Exception:  # the test reports it
            record.append({"call": "EXCEPTION", "args": [traceback.format_exc()], "text": None})
        drawn[name] = record

    panels = addon.ui
    draw("idle", panels.PARTPACKER_PT_main.draw)
    draw("advanced", panels.PARTPACKER_PT_advanced.draw)
    draw("output", panels.PARTPACKER_PT_output.draw)

    settings.image_source = "IMAGE"
    settings.image = bpy.data.images.new("photo", 16, 16)
    settings.preview_image = bpy.data.images.new("segmentation", 16, 16)
    draw("datablock", panels.PARTPACKER_PT_main.draw)

    client = addon.client
    job = client.Job("j1", "generate", {}, None, time.monotonic() - 3, time.monotonic())
    job.progress = client.Progress("j1", "sample", 12, 50, 3.0)
    session.task = addon.session.Task("generate", "robot", context.scene.name, 0, job)
    draw("busy", panels.PARTPACKER_PT_main.draw)
    session.task = None

    session.last_error = client.JobError(
        "out_of_memory", "the GPU ran out of memory", "lower the grid resolution"
    )
    draw("error", panels.PARTPACKER_PT_main.draw)
    session.last_error = client.JobError(
        "weights",
        "the background-removal model 'u2net' is not downloaded yet, and downloads are off "
        "(HF_HUB_OFFLINE)",
        "unset HF_HUB_OFFLINE, then run `python -m backend download`, or point --weights-dir "
        "at a folder with them",
        traceback="Traceback (most recent call last): ...",
    )
    draw("long_error", panels.PARTPACKER_PT_main.draw)
    details = addon.details.write_details("details test")
    drawn["details_text"] = [{"call": "text", "text": details.as_string()}]
    session.last_error = None
    drawn["room"] = [{"call": "room", "text": addon.ui_text.room_for_text(context)}]

    hello = client.Hello(1, "0.1.0", "cuda", "NVIDIA H100", "bfloat16", None, None)
    client_of_session = session.client.local  # the worker behind the backend switch
    client_of_session.hello = hello
    draw("on_gpu", panels.PARTPACKER_PT_main.draw)
    client_of_session.hello = client.Hello(1, "0.1.0", "cpu", "CPU", "float32", None, None)
    draw("on_cpu", panels.PARTPACKER_PT_main.draw)
    client_of_session.hello = None

    npz = write_npz(Path(tempfile.mkdtemp()) / "parts.npz", parts_arrays(*sample_parts()))
    metadata = {"image": "/x/robot.png", "seed": 5, "timings": {"sample": 1.5, "decode": 0.5}}
    result = addon.importer.import_parts(npz, context.scene, stem="robot", metadata=metadata)
    context.view_layer.objects.active = result.parts[1]
    drawn["result_poll"] = [{"call": "poll", "text": panels.PARTPACKER_PT_result.poll(context)}]
    draw("result", panels.PARTPACKER_PT_result.draw)

    check = addon.setup.backend_check
    missing = check.Finding(
        False,
        "weights: flow.pt, vae.pt, model.safetensors are missing in /w",
        "run `python -m backend download`, or point --weights-dir at a folder with them",
    )
    check.current().report = check.DoctorReport(
        False,
        [
            check.Finding(True, "backend 0.1.0, python 3.11.7, torch 2.13.0+cpu; device CPU"),
            check.Finding(False, "device: CUDA was requested but is not available", "choose auto"),
            missing,
            missing,
        ],
    )
    prefs = addon_preferences()
    everything = addon.preferences.draw_all
    draw("preferences", lambda panel, context: everything(prefs, panel.layout, context))
    prefs.weights_source = "FOLDER"  # the findings were about the cache
    drawn["report_after_switch"] = [{"call": "report", "text": str(check.current().report)}]
    check.current().report = None
    draw_setup_scenarios(addon, draw)
    return drawn


def draw_setup_scenarios(addon, draw) -> None:
    """The preferences' setup section before, during and after a run, offline and online."""
    setup, check = addon.setup.state.current(), addon.setup.backend_check

    def draw_setup(name: str) -> None:
        draw(name, lambda panel, context: addon.preferences.draw_setup(panel.layout, context))

    draw_setup("setup_offline")
    activity = setup.start(
        [addon.setup.runner.Step("Install PyTorch (CPU)", [sys.executable, "-c", "input()"])]
    )
    activity.status.done_bytes, activity.status.total_bytes = 256_000_000, 1_000_000_000
    draw_setup("setup_running")
    setup.cancel()
    setup.last.status.cancelled = False
    setup.last.status.error = "ERROR: No matching distribution found for torch"
    draw_setup("setup_failed")
    bpy.context.preferences.system.use_online_access = True
    draw_setup("setup_online")
    check.current().report = check.DoctorReport(
        False,
        [
            check.Finding(True, "/w/flow.pt: 53 tensors match (5.00 GB)"),
            check.Finding(False, "/w/vae.pt: truncated", "download it again"),
        ],
    )
    draw_setup("setup_checked")


def main(output: Path) -> None:
    addon = enable_addon()

    def popup(menu, context) -> None:
        try:
            drawn = draw_scenarios(addon, menu.layout, context)
            output.write_text(json.dumps(drawn, indent=1))
        finally:
            sys.stdout.flush()
            os._exit(0)

    bpy.context.window_manager.popup_menu(popup, title="PartPacker")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
