"""Running a job sequence from the UI: the first job starts at once (so a bad image is reported
by the button that was pressed), a timer steps through the rest. In background mode (no
timers) the sequence runs to its end before the operator returns."""

from __future__ import annotations

import bpy

from .. import timers
from ..client import BusyError
from ..session import current, ensure_polling
from .sequence import JobSequence, current_sequence, run_to_end, set_current_sequence

STEP_INTERVAL = 0.2


def start_sequence(sequence: JobSequence, context: bpy.types.Context) -> None:
    """Raises client.BusyError while a job or another sequence runs."""
    running = current_sequence()
    if current().task is not None or (running is not None and not running.ended):
        raise BusyError("a job is already running")
    set_current_sequence(sequence)
    if bpy.app.background:
        run_to_end(sequence, context)
        return
    if sequence.step(context):
        ensure_polling()
        # persistent: after a file load the cancelled job is still settled
        bpy.app.timers.register(_step, first_interval=STEP_INTERVAL, persistent=True)


def _step() -> float | None:
    sequence = current_sequence()
    if sequence is None:
        return None
    going = sequence.step(bpy.context)
    if sequence.running is not None:
        ensure_polling()
    timers.redraw("VIEW_3D")
    return STEP_INTERVAL if going else None
