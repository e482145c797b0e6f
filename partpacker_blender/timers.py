"""The UI's side of polling (polling.py): timers that call a poll function on the main thread,
and redraws of the areas that show its progress. Timers never fire in background mode."""

from __future__ import annotations

from collections.abc import Callable

import bpy

FIRST_INTERVAL = 0.1


def keep_polling(poll: Callable[[], float | None]) -> None:
    """Call `poll` from a timer until it returns None. Persistent: loading a file does not stop
    it, so work that is still running is followed to its end."""
    if not bpy.app.timers.is_registered(poll):
        bpy.app.timers.register(poll, first_interval=FIRST_INTERVAL, persistent=True)


def stop_polling(poll: Callable[[], float | None]) -> None:
    if bpy.app.timers.is_registered(poll):
        bpy.app.timers.unregister(poll)


def redraw(area_type: str | None = None, region_type: str | None = None) -> None:
    """Redraw every area of `area_type` ("VIEW_3D", "PREFERENCES"; None: all) in every window,
    or only its regions of `region_type` ("UI": the sidebar)."""
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            if area_type is not None and area.type != area_type:
                continue
            if region_type is None:
                area.tag_redraw()
                continue
            for region in area.regions:
                if region.type == region_type:
                    region.tag_redraw()


def redraw_sidebar() -> None:
    """The 3D Viewport's sidebar, where the add-on's panels are: not the viewports themselves."""
    redraw("VIEW_3D", "UI")
