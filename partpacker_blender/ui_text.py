"""Text that fits where it is drawn: labels wrapped to the region's width, measured in the UI's
font at the UI's scale (Blender cuts a long label off in the middle otherwise)."""

from __future__ import annotations

from collections.abc import Callable

import blf
import bpy

DEFAULT_REGION_WIDTH = 291
"""The 3D Viewport sidebar's width in a new file at scale 1 (for draws without a region)."""
MARGIN = 100
"""Pixels at scale 1 that a label in a box in a sidebar panel cannot use: the category tabs, the
panel's and the box's padding, an icon."""


def ui_scale(context: bpy.types.Context) -> float:
    """The UI's scale (0 where no window has set it, as in the bpy module: 1 then)."""
    system = context.preferences.system
    return (system.ui_scale or 1.0) * (system.pixel_size or 1.0)


def text_width(context: bpy.types.Context, text: str) -> float:
    """Pixels `text` takes in the UI's font at the UI's scale."""
    blf.size(0, context.preferences.ui_styles[0].widget.points * ui_scale(context))
    return blf.dimensions(0, text)[0]


def room_for_text(context: bpy.types.Context) -> float:
    """Pixels a label's text may take in the region being drawn."""
    region = getattr(context, "region", None)
    width = region.width if region is not None and region.width > 1 else DEFAULT_REGION_WIDTH
    return max(width - MARGIN * ui_scale(context), 60.0)


def wrap(text: str, room: float, measure: Callable[[str], float]) -> list[str]:
    """`text` as lines no wider than `room` by `measure`, broken between words; a word wider than
    `room` on its own is broken where it must be (a long path)."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if measure(candidate) <= room:
            line = candidate
            continue
        if line:
            lines.append(line)
        while measure(word) > room and len(word) > 1:
            cut = _longest_fitting(word, room, measure)
            slash = word.rfind("/", 0, cut)
            cut = slash + 1 if slash > 0 else cut  # a path or address breaks after a "/"
            lines.append(word[:cut])
            word = word[cut:]
        line = word
    if line:
        lines.append(line)
    return lines


def _longest_fitting(word: str, room: float, measure: Callable[[str], float]) -> int:
    cut = 1
    while cut < len(word) - 1 and measure(word[: cut + 1]) <= room:
        cut += 1
    return cut


def draw_wrapped(
    layout: bpy.types.UILayout, context: bpy.types.Context, text: str, icon: str = "NONE"
) -> None:
    """`text` as labels that fit the region; the icon on the first, the others aligned to it."""
    lines = wrap(text, room_for_text(context), lambda line: text_width(context, line))
    column = layout.column(align=True)
    for number, line in enumerate(lines):
        first_icon = icon if number == 0 else ("BLANK1" if icon != "NONE" else "NONE")
        column.label(text=line, icon=first_icon)
