"""The add-on's panels and preferences as Blender really draws them: each draw of the sidebar (or
of the preferences) goes to the add-on's own draw function with its real layout, and every layout
call is also written down with whether it shows enabled and active there.

`PANELS` names the sidebar's panel classes: the one list to adapt when the add-on's panels change
(the preferences are found through the add-on's entry in Blender's preferences).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import blf
import bpy

PANELS = (
    "PARTPACKER_PT_main",
    "PARTPACKER_PT_advanced",
    "PARTPACKER_PT_output",
    "PARTPACKER_PT_result",
)
HISTORY_LIMIT = 600
"""Distinct drawn states kept for the whole run (a job redraws the panel ten times a second)."""


class PanelRecorder:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.draw_count = 0
        self.draws: dict[str, dict[str, Any]] = {}
        self.history: list[dict[str, Any]] = []

    def clock(self) -> float:
        return round(time.monotonic() - self.started, 3)

    def install(self, addon: str) -> None:
        """Record every draw of PANELS and of the preferences of `addon` (a module name) from now
        on (Blender looks up `draw` at each draw)."""
        preferences = type(bpy.context.preferences.addons[addon].preferences)
        for drawn in (*(getattr(bpy.types, name) for name in PANELS), preferences):
            drawn.draw = self._recording(drawn.__name__, drawn.draw)

    def latest(self) -> dict[str, dict[str, Any]]:
        return {name: dict(draw) for name, draw in self.draws.items()}

    def _recording(self, name: str, draw: Callable) -> Callable:
        def recorded_draw(panel, context) -> None:
            items: list[dict[str, Any]] = []
            draw(PanelView(panel, RecordingLayout(panel.layout, items)), context)
            self._store(name, items)

        return recorded_draw

    def _store(self, name: str, items: list[dict[str, Any]]) -> None:
        self.draw_count += 1
        previous = self.draws.get(name)
        self.draws[name] = {"time": self.clock(), "items": items}
        if (previous is None or previous["items"] != items) and len(self.history) < HISTORY_LIMIT:
            self.history.append({"panel": name, "time": self.clock(), "items": items})


class PanelView:
    """The panel as its draw function sees it, with the recording layout in place of its own."""

    def __init__(self, panel: Any, layout: RecordingLayout) -> None:
        object.__setattr__(self, "_panel", panel)
        object.__setattr__(self, "layout", layout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._panel, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._panel, name, value)


class RecordingLayout:
    """A real UILayout whose calls are also written down; sub-layouts record into the same list."""

    def __init__(self, layout: Any, items: list, parent: RecordingLayout | None = None) -> None:
        object.__setattr__(self, "_layout", layout)
        object.__setattr__(self, "_items", items)
        object.__setattr__(self, "_parent", parent)
        object.__setattr__(self, "_flags", {})

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._layout, name)
        if not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            args = tuple(a._panel if isinstance(a, PanelView) else a for a in args)
            result = attribute(*args, **kwargs)
            if isinstance(result, bpy.types.UILayout):
                return RecordingLayout(result, self._items, self)
            self._items.append(self._item(name, args, kwargs))
            return result

        return call

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._layout, name, value)
        self._flags[name] = value

    def _shown(self, flag: str) -> bool:
        """False when this layout or one around it has `flag` (enabled, active) turned off."""
        layout: RecordingLayout | None = self
        while layout is not None:
            if layout._flags.get(flag) is False:
                return False
            layout = layout._parent
        return True

    def _item(self, call: str, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
        item = {
            "call": call,
            "args": [a for a in args if isinstance(a, str)],
            "text": kwargs.get("text"),
            "icon": kwargs.get("icon"),
            "enabled": self._shown("enabled"),
            "active": self._shown("active"),
        }
        if call == "operator":
            item["poll"] = operator_polls(args[0])
        if call == "label" and item["text"]:
            item["width_px"] = text_width_px(item["text"])
        return item


def text_width_px(text: str) -> float:
    """Pixels the text takes in the UI's font at the UI's scale (compare with the region's width
    to see whether a label is cut off)."""
    preferences = bpy.context.preferences
    scale = preferences.system.ui_scale * preferences.system.pixel_size
    blf.size(0, preferences.ui_styles[0].widget.points * scale)
    return round(blf.dimensions(0, text)[0], 1)


def operator_polls(idname: str) -> bool:
    category, name = idname.split(".")
    return bool(getattr(getattr(bpy.ops, category), name).poll())
