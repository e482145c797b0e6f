"""The add-on's preferences: their properties (read elsewhere through settings.py) and all
that is drawn in them: the settings, the backend check's findings and the setup section."""

import logging
from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty

from .messages import plain_words
from .problems import sentence
from .remote_preferences import RemoteBackendPreferences, draw_backend_choice
from .settings import BACKEND_PYTHON_ENV, environment_dir, get_preferences, worker_settings
from .setup import backend_check, state
from .setup.backend_check import DoctorReport, Finding
from .setup.operators import OFFLINE_MESSAGE
from .setup.runner import RunStatus
from .setup.weights import TOTAL_BYTES, WEIGHT_FILES, human_size
from .ui_text import draw_wrapped

ENVIRONMENT_SIZE = "about 6 GB"
log = logging.getLogger(__name__)


def _findings_outdated(_prefs, _context: bpy.types.Context) -> None:
    """The backend or its weights changed: the last check's findings are about the old ones, so
    they go and the check runs again (not when the change makes them true: setup points the
    preference at the Python it has just checked)."""
    check = backend_check.current()
    if check.report is None:
        return
    if backend_check.doctor_command(worker_settings()) == check.checked_command:
        return
    check.report = None
    if not bpy.app.background and not bpy.app.timers.is_registered(_check_again):
        bpy.app.timers.register(_check_again, first_interval=0.3)  # not inside an update


def _check_again() -> None:
    windows = bpy.context.window_manager.windows
    if state.current().activity is not None or not windows:
        return
    try:
        with bpy.context.temp_override(window=windows[0]):
            bpy.ops.partpacker.check_backend()
    except RuntimeError as error:  # the operator's own error report: no usable backend
        log.info("the backend check did not start: %s", error)


class PARTPACKER_AddonPreferences(RemoteBackendPreferences, bpy.types.AddonPreferences):
    bl_idname = __package__

    backend_python: StringProperty(
        name="Backend Python",
        subtype="FILE_PATH",
        description="Python executable of the environment that has the backend's packages "
        f"(empty: ${BACKEND_PYTHON_ENV})",
        update=_findings_outdated,
    )
    weights_source: EnumProperty(
        name="Weights",
        items=(
            ("HF_CACHE", "Hugging Face Cache", "The weights in a Hugging Face cache folder"),
            ("FOLDER", "Local Folder", "A folder holding flow.pt, vae.pt and model.safetensors"),
        ),
        default="HF_CACHE",
        update=_findings_outdated,
    )
    cache_dir: StringProperty(
        name="Cache Folder",
        subtype="DIR_PATH",
        description="Hugging Face cache folder (empty: Hugging Face's default)",
        update=_findings_outdated,
    )
    weights_dir: StringProperty(
        name="Weights Folder",
        subtype="DIR_PATH",
        description="Folder holding flow.pt, vae.pt and model.safetensors",
        update=_findings_outdated,
    )
    device: EnumProperty(
        name="Device",
        items=(
            ("auto", "Automatic", "CUDA, then Apple MPS, then the CPU"),
            ("cuda", "CUDA", "An NVIDIA GPU"),
            ("mps", "Apple MPS", "Apple silicon GPU"),
            ("cpu", "CPU", "Very slow: for trying things out"),
        ),
        default="auto",
        update=_findings_outdated,
    )
    low_memory: BoolProperty(
        name="Low GPU Memory",
        description="Keep each network in main memory except while it runs: less GPU memory, "
        "some time each job moving the networks to the GPU and back",
    )
    fast_start_cache: BoolProperty(
        name="Fast Start Cache",
        description="Keep a converted copy of the weights in the extension's user folder "
        "(about 5 GB more disk) so that the models load faster after the first time",
    )
    keep_loaded_minutes: IntProperty(
        name="Keep Loaded (minutes)",
        default=10,
        min=0,
        soft_max=120,
        description="Minutes the backend keeps the models in GPU memory after a job "
        "(0: until Blender closes)",
    )
    hang_timeout: IntProperty(
        name="Hang Timeout (seconds)",
        default=600,
        min=1,
        description="Seconds without any news from a running job before the backend is restarted",
    )
    environment_folder: StringProperty(
        name="Environment Folder",
        subtype="DIR_PATH",
        description="Where Set Up Backend creates the backend's Python environment, in a "
        "backend-env folder (empty: the add-on's user folder). On Windows a short folder such "
        "as C:\\PartPacker avoids its path-length limit",
    )
    output_dir: StringProperty(
        name="Job Folders",
        subtype="DIR_PATH",
        description="Where each generation's files go (empty: a partpacker folder beside the "
        "saved .blend file, or Documents/PartPacker while the file is not saved)",
    )

    def draw(self, context: bpy.types.Context) -> None:
        draw_all(self, self.layout, context)


def draw_all(
    prefs: PARTPACKER_AddonPreferences, layout: bpy.types.UILayout, context: bpy.types.Context
) -> None:
    """Where to generate, then setting up (the backend's environment, the weights), then the
    check, then how the backend runs."""
    choice = layout.box().column()
    choice.use_property_split = True
    draw_backend_choice(prefs, choice)
    draw_setup(layout, context)
    draw_backend_check(layout, context)
    draw_preferences(prefs, layout)


def draw_preferences(prefs: PARTPACKER_AddonPreferences, layout: bpy.types.UILayout) -> None:
    """The settings that are not part of setting up: how the backend runs."""
    box = layout.box()
    box.label(text="Backend", icon="PREFERENCES")
    column = box.column()
    column.use_property_split = True
    column.prop(prefs, "backend_python")
    column.prop(prefs, "device")
    column.prop(prefs, "low_memory")
    column.prop(prefs, "fast_start_cache")
    column.prop(prefs, "keep_loaded_minutes")
    column.prop(prefs, "hang_timeout")
    column.prop(prefs, "output_dir")


def draw_backend_check(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    """The one Check button and its findings, each once (those about a weight file are shown
    beside the file in Model Weights)."""
    box = layout.box()
    box.operator("partpacker.check_backend", text="Check", icon="VIEWZOOM")
    report = backend_check.current().report
    if report is None:
        return
    for finding in report_findings(report, include_weight_files=False):
        draw_finding(box, context, finding)


def report_findings(report: DoctorReport, include_weight_files: bool) -> list[Finding]:
    """The report's findings without repeats, with or without those about a weight file."""
    about_files = {id(report.finding_about(weight.filename)) for weight in WEIGHT_FILES}
    seen: set[tuple[bool, str]] = set()
    kept = []
    for finding in report.findings:
        if (id(finding) in about_files) != include_weight_files or (
            finding.ok,
            finding.text,
        ) in seen:
            continue
        seen.add((finding.ok, finding.text))
        kept.append(finding)
    return kept


def draw_finding(layout: bpy.types.UILayout, context: bpy.types.Context, finding: Finding) -> None:
    draw_wrapped(layout, context, sentence(plain_words(finding.text)), finding_icon(finding))
    if finding.hint:
        draw_wrapped(layout, context, sentence(plain_words(finding.hint)), "BLANK1")


def finding_icon(finding: Finding | None) -> str:
    """A check's word as an icon; a question mark where the check said nothing."""
    return "QUESTION" if finding is None else "CHECKMARK" if finding.ok else "ERROR"


def draw_setup(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    setup = state.current()
    if setup.activity is not None:
        draw_setup_activity(layout, context, setup.activity.status)
    elif setup.last is not None and not setup.last.status.succeeded:
        draw_setup_outcome(layout, context, setup.last.status)
    if not bpy.app.online_access:
        layout.label(text=f"{OFFLINE_MESSAGE}: downloads are disabled", icon="INTERNET_OFFLINE")
    draw_environment_setup(layout.box(), context)
    draw_weights_setup(layout.box(), context)


def draw_setup_activity(
    layout: bpy.types.UILayout, context: bpy.types.Context, status: RunStatus
) -> None:
    box = layout.box()
    steps = f" (step {status.step + 1} of {status.steps})" if status.steps > 1 else ""
    box.label(text=f"{status.label}{steps}", icon="SORTTIME")
    # A line of output that says nothing (the "}" closing a JSON report) is not shown.
    text = status.detail[:90] if any(c.isalpha() for c in status.detail) else ""
    if status.total_bytes:
        text = f"{human_size(status.done_bytes or 0)} of {human_size(status.total_bytes)}"
    box.progress(factor=status.fraction, type="BAR", text=text)
    box.operator("partpacker.cancel_setup", icon="CANCEL")


def draw_setup_outcome(
    layout: bpy.types.UILayout, context: bpy.types.Context, status: RunStatus
) -> None:
    icon = "INFO" if status.cancelled else "ERROR"
    draw_wrapped(layout.box(), context, status.error or "Stopped", icon)


def draw_environment_setup(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    layout.label(text="Backend Environment", icon="CONSOLE")
    python = worker_settings(context).python  # the preference, else $PARTPACKER_BACKEND_PYTHON
    if python:
        layout.label(text=f"Using {python}", icon="CHECKMARK")
    else:
        layout.label(text="Not set up yet", icon="ERROR")
    column = layout.column(align=True)
    column.label(text=f"A Python environment with PyTorch, {ENVIRONMENT_SIZE}, in:")
    column.label(text=str(environment_dir()))
    layout.prop(get_preferences(context), "environment_folder")
    row = layout.row(align=True)
    row.enabled = bpy.app.online_access  # the button downloads; scripts may use local wheels
    row.operator("partpacker.setup_backend", icon="IMPORT")
    row.operator("partpacker.setup_backend_with_python", icon="FILEBROWSER")
    layout.operator("partpacker.use_existing_python", icon="FILE_SCRIPT")


def draw_weights_setup(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    layout.label(text="Model Weights", icon="FILE_3D")
    prefs = get_preferences(context)
    column = layout.column()
    column.use_property_split = True
    column.prop(prefs, "weights_source")
    column.prop(prefs, "weights_dir" if prefs.weights_source == "FOLDER" else "cache_dir")
    column = layout.column(align=True)
    report = backend_check.current().report
    for weight in WEIGHT_FILES:
        finding = None if report is None else report.finding_about(weight.filename)
        size = human_size(weight.approx_bytes)
        text = f"{weight.filename}: {weight.what}, {size} ({weight.repo_id})"
        column.label(text=text, icon=finding_icon(finding))
    column.label(text=f"In all about {human_size(TOTAL_BYTES)}, stored in:")
    column.label(text=weights_location(context))
    if report is not None:
        for finding in report_findings(report, include_weight_files=True):
            if not finding.ok:
                draw_finding(layout, context, finding)
    layout.operator("partpacker.download_weights", icon="IMPORT")
    layout.label(text="Offline: copy the three files into a folder and choose it as Local Folder")


def weights_location(context: bpy.types.Context) -> str:
    prefs = get_preferences(context)
    if prefs.weights_source == "FOLDER":
        folder = prefs.weights_dir
        return str(Path(bpy.path.abspath(folder))) if folder else "no weights folder chosen yet"
    if prefs.cache_dir:
        return str(Path(bpy.path.abspath(prefs.cache_dir)))
    return "the Hugging Face cache (HF_HOME, usually ~/.cache/huggingface)"


CLASSES = (PARTPACKER_AddonPreferences,)
