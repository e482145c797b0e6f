"""A job that closing Blender discarded (Blender has no quit handler to ask from): said on
Blender's console as it closes, and in the panel the next time the add-on starts. Noted when the
add-on is disabled (by hand, or by Blender as it quits) or else at interpreter exit."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from . import notices, session

NOTE_NAME = "discarded_job.json"

_note: Path | None = None


def watch(folder: Path) -> None:
    """Keep the note in `folder` (found now: at exit bpy may be gone), and show the one the
    last Blender left, once."""
    global _note
    _note = folder / NOTE_NAME
    try:
        text = json.loads(_note.read_text(encoding="utf-8"))["text"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    _note.unlink(missing_ok=True)
    notices.remember(f"Last time, {text}")


def note_running_job() -> None:
    """As the add-on stops, before its worker does: note the job that is about to be lost."""
    try:
        task = session.current().task
    except RuntimeError:  # the add-on was disabled
        return
    if task is None or task.kind == "unload" or _note is None:
        return
    stamp = time.strftime("%H:%M")
    text = (
        f"PartPacker stopped at {stamp} (Blender closed, or the add-on was disabled) during the "
        f"{task.kind} job ({task.label}), which was discarded"
    )
    print(text, file=sys.stderr, flush=True)
    try:
        _note.write_text(json.dumps({"text": text}), encoding="utf-8")
    except OSError as error:
        print(f"PartPacker: cannot keep that note in {_note}: {error}", file=sys.stderr)
