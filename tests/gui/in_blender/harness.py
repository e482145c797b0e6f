"""Runs inside the real Blender (tools/real-blender): steps through a scenario from
`bpy.app.timers` and writes what it saw as JSON for the pytest side (tests/gui/).

A scenario is a generator function taking the `Harness`: it yields a number of seconds to wait
(the timer comes back then; the main thread never sleeps) and records observations. When it ends,
or raises, the observations (with the traceback, if any) are written and Blender quits.

    blender start.blend --python scenario.py -- settings.json

Everything here looks at the add-on the way a user or a script does: operators invoked from the
sidebar's region, the scene, the selection, the panels as drawn (panels.py), screenshots. The one
read of the add-on's runtime state is `addon_state()`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bpy
from panels import PanelRecorder

ADDON = "bl_ext.user_default.partpacker"
"""The module of the installed extension (repository user_default, id partpacker)."""
POLL = 0.1
Steps = Iterator[float]


def addon_state() -> dict[str, Any]:
    """Whether a job runs and the error the panel holds: the add-on's runtime state, read in this
    one place so that it is one line to adapt when the add-on's internals move."""
    session = sys.modules[f"{ADDON}.session"].current()
    error = session.last_error
    return {
        "busy": session.task is not None,
        "error": None if error is None else {"message": error.message, "hint": error.hint},
    }


def settings_from_argv() -> dict[str, Any]:
    """The JSON file named after `--` on Blender's command line (written by tests/gui)."""
    return json.loads(Path(sys.argv[sys.argv.index("--") + 1]).read_text())


class Harness:
    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.output = Path(settings["output_dir"])
        self.output.mkdir(parents=True, exist_ok=True)
        self.observations: dict[str, Any] = {"error": None, "checkpoints": {}}
        self.panels = PanelRecorder()
        self.started = time.monotonic()

    # -- running -----------------------------------------------------------------------------

    def run(self, scenario: Callable[[Harness], Steps]) -> None:
        self.panels.install(ADDON)
        steps = scenario(self)

        def tick() -> float | None:
            try:
                return next(steps)
            except StopIteration:
                pass
            except Exception:
                self.observations["error"] = traceback.format_exc()
                print(self.observations["error"], file=sys.stderr, flush=True)
            self.finish()
            return None

        bpy.app.timers.register(tick, first_interval=POLL)

    def finish(self) -> None:
        """Write the observations, then quit Blender as File > Quit does."""
        self.observations["panel_history"] = self.panels.history
        path = self.output / "observations.json"
        path.write_text(json.dumps(self.observations, indent=1, default=str))
        with bpy.context.temp_override(window=self.window()):
            bpy.ops.wm.quit_blender()

    def until(self, condition: Callable[[], Any], what: str, timeout: float = 120.0) -> Steps:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout:.0f} s for {what}")
            yield POLL

    def wait_while_busy(self, what: str, timeout: float = 300.0) -> Steps:
        """Until the job has ended (the harness redraws nothing meanwhile)."""
        yield from self.until(lambda: not addon_state()["busy"], f"{what} to end", timeout)

    # -- what is there -----------------------------------------------------------------------

    def checkpoint(self, name: str) -> dict[str, Any]:
        """The scene, the selection, the panels as last drawn and the add-on's state, now."""
        snapshot = {
            "time": self.panels.clock(),
            "scene": scene_snapshot(),
            "panels": self.panels.latest(),
            "state": addon_state(),
            "workers": worker_pids(),
            "sidebar_width": self.sidebar().width,
        }
        self.observations["checkpoints"][name] = snapshot
        return snapshot

    def panel_shows(self, text: str, panel: str = "PARTPACKER_PT_main") -> bool:
        """Whether the panel's latest draw has `text` in one of its labels, buttons or bars."""
        items = self.panels.latest().get(panel, {}).get("items", [])
        return any(text in (item["text"] or "") for item in items)

    def fresh_panels(self) -> Steps:
        """Have the sidebar drawn again (as moving the mouse over it would) and wait for it."""
        drawn = self.panels.draw_count
        self.sidebar().tag_redraw()
        yield from self.until(lambda: self.panels.draw_count > drawn, "the sidebar to redraw", 20)

    # -- the window ---------------------------------------------------------------------------

    def window(self) -> bpy.types.Window:
        return bpy.context.window_manager.windows[0]

    def view3d(self) -> bpy.types.Area:
        return next(a for a in self.window().screen.areas if a.type == "VIEW_3D")

    def sidebar(self) -> bpy.types.Region:
        return next(r for r in self.view3d().regions if r.type == "UI")

    def show_partpacker_tab(self) -> Steps:
        """Open the 3D Viewport's sidebar on the PartPacker tab: Ctrl+Wheel over the tabs, as a
        user might (a region's active tab cannot be set from Python)."""
        self.view3d().spaces.active.show_region_ui = True
        yield from self.until(lambda: self.sidebar().width > 100, "the sidebar to open", 20)
        region, height = self.sidebar(), self.window().height
        self.mouse(region.x + region.width - 9, height - (region.y + region.height - 300))
        for _ in range(10):
            if region.active_panel_category == "PartPacker":
                break
            xdotool("keydown", "ctrl", "click", "5", "keyup", "ctrl")
            yield 0.4
        assert region.active_panel_category == "PartPacker", region.active_panel_category
        self.mouse(300, 500)  # park it over the viewport, away from the sidebar

    def mouse(self, x: int, y: int) -> None:
        """Move the pointer to screen pixel (x, y) (from the top left); twice, as X without a
        window manager needs before Blender notices."""
        xdotool("mousemove", str(x - 1), str(y))
        xdotool("mousemove", str(x), str(y))

    def press(self, operator: str, where: dict[str, Any] | None = None, **properties: Any):
        """Invoke `operator` ("partpacker.generate") as a button does: in the sidebar's region,
        or `where` (a context: window, area, region). An error it reports comes back as `report`
        (Blender raises it for operators called from Python)."""
        category, name = operator.split(".")
        function = getattr(getattr(bpy.ops, category), name)
        where = where or {"window": self.window(), "area": self.view3d(), "region": self.sidebar()}
        try:
            with bpy.context.temp_override(**where):
                result = function("INVOKE_DEFAULT", **properties)
        except RuntimeError as error:
            return {"result": None, "report": str(error).strip()}
        return {"result": sorted(result), "report": None}

    def screenshot(self, name: str) -> Steps:
        """The whole screen (this session's own Xvfb) as OUTPUT/NAME.png, once it has drawn."""
        for area in self.window().screen.areas:
            area.tag_redraw()
        yield 0.5
        path = self.output / f"{name}.png"
        grab = subprocess.Popen(["import", "-window", "root", str(path)])
        yield from self.until(lambda: grab.poll() is not None, f"screenshot {name}", 30)
        assert grab.returncode == 0 and path.is_file(), f"screenshot {name} failed"
        self.observations.setdefault("screenshots", []).append(path.name)


def configure_backend(settings: dict[str, Any]) -> None:
    """The add-on's preferences as a user sets them: the backend Python, the tiny weights as a
    local folder, the CPU."""
    prefs = bpy.context.preferences.addons[ADDON].preferences
    prefs.backend_python = settings["backend_python"]
    prefs.weights_source = "FOLDER"
    prefs.weights_dir = settings["weights_dir"]
    prefs.device = "cpu"


def set_panel(**values: Any) -> None:
    """Fields of the sidebar panel (the scene's settings), as a user types them in."""
    for name, value in values.items():
        setattr(bpy.context.scene.partpacker, name, value)


def xdotool(*arguments: str) -> None:
    subprocess.run(["xdotool", *arguments], check=True, timeout=10)


def scene_snapshot() -> dict[str, Any]:
    context = bpy.context
    active = context.view_layer.objects.active
    return {
        "objects": {obj.name: object_snapshot(obj) for obj in context.scene.objects},
        "active": active.name if active else None,
        "selected": sorted(obj.name for obj in context.selected_objects),
        "collections": sorted(c.name for c in context.scene.collection.children_recursive),
        "materials": sorted(m.name for m in bpy.data.materials),
        "cursor": list(context.scene.cursor.location),
    }


def object_snapshot(obj: bpy.types.Object) -> dict[str, Any]:
    metadata = obj.get("partpacker")
    return {
        "type": obj.type,
        "parent": obj.parent.name if obj.parent else None,
        "collections": [c.name for c in obj.users_collection],
        "location": list(obj.matrix_world.translation),
        "scale": list(obj.scale),
        "faces": len(obj.data.polygons) if obj.type == "MESH" else None,
        "materials": [s.material.name for s in obj.material_slots if s.material],
        "metadata": metadata.to_dict() if hasattr(metadata, "to_dict") else None,
        "files": {  # the metadata's paths, resolved as the add-on does ("//": beside the .blend)
            key: bpy.path.abspath(metadata[key])
            for key in ("job_folder", "image")
            if hasattr(metadata, "to_dict") and metadata.get(key)
        },
    }


def worker_pids() -> list[int]:
    """Processes started by this Blender (at any depth) that run the backend's worker."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                )
            except (OSError, IndexError, ValueError):
                continue  # ended meanwhile
    ours, found = {os.getpid()}, True
    while found:
        found = False
        for pid, parent in parents.items():
            if parent in ours and pid not in ours:
                ours.add(pid)
                found = True
    return sorted(pid for pid in ours - {os.getpid()} if is_worker(pid))


def is_worker(pid: int) -> bool:
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"backend" in arguments and b"serve" in arguments
