"""The setup section of the add-on's preferences: `draw_setup(layout, context)`."""

from __future__ import annotations

from pathlib import Path

import bpy

from ..backend_check import DoctorReport, Finding
from ..preferences import get_preferences, worker_settings
from ..session import current as current_session
from . import state
from .operators import OFFLINE_MESSAGE, environment_dir
from .runner import RunStatus
from .weights import TOTAL_BYTES, WEIGHT_FILES, human_size

ENVIRONMENT_SIZE = "about 6 GB"


def draw_setup(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    setup = state.current()
    if setup.activity is not None:
        draw_activity(layout, setup.activity.status)
    elif setup.last is not None and not setup.last.status.succeeded:
        draw_outcome(layout, setup.last.status)
    draw_environment(layout.box(), context)
    draw_weights(layout.box(), context)


def draw_activity(layout: bpy.types.UILayout, status: RunStatus) -> None:
    box = layout.box()
    steps = f" (step {status.step + 1} of {status.steps})" if status.steps > 1 else ""
    box.label(text=f"{status.label}{steps}", icon="SORTTIME")
    text = status.detail[:90]
    if status.total_bytes:
        text = f"{human_size(status.done_bytes or 0)} of {human_size(status.total_bytes)}"
    box.progress(factor=status.fraction, type="BAR", text=text)
    box.operator("partpacker.cancel_setup", icon="CANCEL")


def draw_outcome(layout: bpy.types.UILayout, status: RunStatus) -> None:
    icon = "INFO" if status.cancelled else "ERROR"
    layout.box().label(text=status.error or "Stopped", icon=icon)


def draw_environment(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    layout.label(text="Backend Environment", icon="CONSOLE")
    python = worker_settings(context).python  # the preference, else $PARTPACKER_BACKEND_PYTHON
    if python:
        layout.label(text=f"Using {python}", icon="CHECKMARK")
    else:
        layout.label(text="Not set up yet", icon="ERROR")
    column = layout.column(align=True)
    column.label(text=f"A Python environment with PyTorch, {ENVIRONMENT_SIZE}, in:")
    column.label(text=str(environment_dir()))
    draw_offline_note(layout)
    row = layout.row(align=True)
    row.enabled = bpy.app.online_access  # the button downloads; scripts may use local wheels
    row.operator("partpacker.setup_backend", icon="IMPORT")
    row.operator("partpacker.setup_backend_with_python", icon="FILEBROWSER")
    layout.operator("partpacker.use_existing_python", icon="FILE_SCRIPT")


def draw_weights(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    layout.label(text="Model Weights", icon="FILE_3D")
    column = layout.column(align=True)
    report = current_session().doctor_report
    for weight in WEIGHT_FILES:
        finding = finding_about(report, weight.filename)
        icon = "QUESTION" if finding is None else "CHECKMARK" if finding.ok else "ERROR"
        size = human_size(weight.approx_bytes)
        text = f"{weight.filename}: {weight.what}, {size} ({weight.repo_id})"
        column.label(text=text, icon=icon)
        if finding is not None and not finding.ok:
            column.label(text=f"    {finding.text}")
            if finding.hint:
                column.label(text=f"    {finding.hint}")
    column.label(text=f"In all about {human_size(TOTAL_BYTES)}, stored in:")
    column.label(text=weights_location(context))
    draw_offline_note(layout)
    row = layout.row(align=True)
    row.operator("partpacker.download_weights", icon="IMPORT")
    row.operator("partpacker.check_backend", text="Check Weights", icon="CHECKMARK")
    layout.label(text="Offline: copy the three files into a folder and choose it as Local Folder")


def finding_about(report: DoctorReport | None, filename: str) -> Finding | None:
    """The backend check's word on one weight file (None before any check)."""
    if report is None:
        return None
    return next((finding for finding in report.findings if filename in finding.text), None)


def weights_location(context: bpy.types.Context) -> str:
    prefs = get_preferences(context)
    if prefs.weights_source == "FOLDER":
        folder = prefs.weights_dir
        return str(Path(bpy.path.abspath(folder))) if folder else "no weights folder chosen yet"
    if prefs.cache_dir:
        return str(Path(bpy.path.abspath(prefs.cache_dir)))
    return "the Hugging Face cache (HF_HOME, usually ~/.cache/huggingface)"


def draw_offline_note(layout: bpy.types.UILayout) -> None:
    if not bpy.app.online_access:
        layout.label(text=f"{OFFLINE_MESSAGE}: downloads are disabled", icon="INTERNET_OFFLINE")
