"""Details of the last error: its full text, the backend's own words and its last output, in a
Text datablock ("PartPacker Details") shown in a Text Editor window of its own."""

from __future__ import annotations

import bpy

from . import session
from .messages import details_text

TEXT_NAME = "PartPacker Details"


def write_details(text_name: str = TEXT_NAME) -> bpy.types.Text | None:
    """The last error's details as the Text `text_name` (replacing its content); None when the
    panel holds no error."""
    current = session.current()
    error = current.last_error
    if error is None:
        return None
    content = details_text(
        error.code, error.message, error.hint, error.traceback, current.client.recent_output()
    )
    text = bpy.data.texts.get(text_name) or bpy.data.texts.new(text_name)
    text.from_string(content)
    text.cursor_set(0)  # from_string leaves the cursor, and so the view, at the end
    return text


def show_in_new_window(context: bpy.types.Context, text: bpy.types.Text) -> bool:
    """A window of its own with a Text Editor showing `text`: the area the button is in,
    duplicated into a new window (View > Area > Duplicate Area into New Window), then turned
    into a Text Editor. False where no new window came."""
    known = set(context.window_manager.windows)
    if context.area is None or "CANCELLED" in bpy.ops.screen.area_dupli("INVOKE_DEFAULT"):
        return False
    new = set(context.window_manager.windows) - known
    if len(new) != 1:
        return False
    area = next(iter(new)).screen.areas[0]
    area.type = "TEXT_EDITOR"
    area.spaces.active.text = text
    area.spaces.active.show_word_wrap = True
    area.spaces.active.show_syntax_highlight = False  # prose, not Python
    area.spaces.active.top = 0
    return True


class PARTPACKER_OT_show_details(bpy.types.Operator):
    """Open the whole message, the backend's own words and its last output in a text"""

    bl_idname = "partpacker.show_details"
    bl_label = "Details"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return session.current().last_error is not None

    def execute(self, context: bpy.types.Context) -> set[str]:
        text = write_details()
        assert text is not None, "poll() found an error"
        shown = context.window is not None and show_in_new_window(context, text)
        if not shown:
            self.report({"INFO"}, f'The details are in the Text Editor\'s text "{text.name}"')
        return {"FINISHED"}


CLASSES = (PARTPACKER_OT_show_details,)
