"""The add-on's preferences: their properties (read elsewhere through settings.py) and all
that is drawn in them: the settings, the backend check's findings and the setup section."""

from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty

from .remote_preferences import RemoteBackendPreferences, draw_backend_choice
from .settings import BACKEND_PYTHON_ENV, environment_dir, get_preferences, worker_settings
from .setup import backend_check, state
from .setup.backend_check import Finding
from .setup.operators import OFFLINE_MESSAGE
from .setup.runner import RunStatus
from .setup.weights import TOTAL_BYTES, WEIGHT_FILES, human_size

ENVIRONMENT_SIZE = "about 6 GB"


class PARTPACKER_AddonPreferences(RemoteBackendPreferences, bpy.types.AddonPreferences):
    bl_idname = __package__

    backend_python: StringProperty(
        name="Backend Python",
        subtype="FILE_PATH",
        description="Python executable of the environment that has the backend's packages "
        f"(empty: ${BACKEND_PYTHON_ENV})",
    )
    weights_source: EnumProperty(
        name="Weights",
        items=(
            ("HF_CACHE", "Hugging Face Cache", "The weights in a Hugging Face cache folder"),
            ("FOLDER", "Local Folder", "A folder holding flow.pt, vae.pt and model.safetensors"),
        ),
        default="HF_CACHE",
    )
    cache_dir: StringProperty(
        name="Cache Folder",
        subtype="DIR_PATH",
        description="Hugging Face cache folder (empty: Hugging Face's default)",
    )
    weights_dir: StringProperty(
        name="Weights Folder",
        subtype="DIR_PATH",
        description="Folder holding flow.pt, vae.pt and model.safetensors",
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
        name="Keep Loaded",
        default=10,
        min=0,
        soft_max=120,
        description="Minutes the backend keeps the models in GPU memory after a job "
        "(0: until Blender closes)",
    )
    hang_timeout: IntProperty(
        name="Hang Timeout",
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
        draw_preferences(self, self.layout)
        draw_setup(self.layout, context)


def draw_preferences(prefs: PARTPACKER_AddonPreferences, layout: bpy.types.UILayout) -> None:
    layout.use_property_split = True
    draw_backend_choice(prefs, layout)
    draw_backend(prefs, layout)
    draw_weights(prefs, layout)
    draw_worker(prefs, layout)


def draw_backend(prefs: PARTPACKER_AddonPreferences, layout: bpy.types.UILayout) -> None:
    column = layout.column(heading="Backend")
    column.prop(prefs, "backend_python")
    column.prop(prefs, "device")
    column.prop(prefs, "low_memory")
    column.prop(prefs, "fast_start_cache")
    draw_backend_check(layout)


def draw_weights(prefs: PARTPACKER_AddonPreferences, layout: bpy.types.UILayout) -> None:
    column = layout.column(heading="Weights")
    column.prop(prefs, "weights_source")
    column.prop(prefs, "weights_dir" if prefs.weights_source == "FOLDER" else "cache_dir")


def draw_worker(prefs: PARTPACKER_AddonPreferences, layout: bpy.types.UILayout) -> None:
    column = layout.column(heading="Worker")
    column.prop(prefs, "keep_loaded_minutes")
    column.prop(prefs, "hang_timeout")
    column.prop(prefs, "output_dir")


def draw_backend_check(layout: bpy.types.UILayout) -> None:
    layout.operator("partpacker.check_backend", icon="CHECKMARK")
    report = backend_check.current().report
    if report is None:
        return
    column = layout.box().column(align=True)
    for finding in report.findings:
        column.label(text=finding.text, icon=finding_icon(finding))
        if finding.hint:
            column.label(text=f"    {finding.hint}")


def finding_icon(finding: Finding | None) -> str:
    """A check's word as an icon; a question mark where the check said nothing."""
    return "QUESTION" if finding is None else "CHECKMARK" if finding.ok else "ERROR"


def draw_setup(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    setup = state.current()
    if setup.activity is not None:
        draw_setup_activity(layout, setup.activity.status)
    elif setup.last is not None and not setup.last.status.succeeded:
        draw_setup_outcome(layout, setup.last.status)
    draw_environment_setup(layout.box(), context)
    draw_weights_setup(layout.box(), context)


def draw_setup_activity(layout: bpy.types.UILayout, status: RunStatus) -> None:
    box = layout.box()
    steps = f" (step {status.step + 1} of {status.steps})" if status.steps > 1 else ""
    box.label(text=f"{status.label}{steps}", icon="SORTTIME")
    text = status.detail[:90]
    if status.total_bytes:
        text = f"{human_size(status.done_bytes or 0)} of {human_size(status.total_bytes)}"
    box.progress(factor=status.fraction, type="BAR", text=text)
    box.operator("partpacker.cancel_setup", icon="CANCEL")


def draw_setup_outcome(layout: bpy.types.UILayout, status: RunStatus) -> None:
    icon = "INFO" if status.cancelled else "ERROR"
    layout.box().label(text=status.error or "Stopped", icon=icon)


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
    draw_offline_note(layout)
    row = layout.row(align=True)
    row.enabled = bpy.app.online_access  # the button downloads; scripts may use local wheels
    row.operator("partpacker.setup_backend", icon="IMPORT")
    row.operator("partpacker.setup_backend_with_python", icon="FILEBROWSER")
    layout.operator("partpacker.use_existing_python", icon="FILE_SCRIPT")


def draw_weights_setup(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    layout.label(text="Model Weights", icon="FILE_3D")
    column = layout.column(align=True)
    report = backend_check.current().report
    for weight in WEIGHT_FILES:
        finding = None if report is None else report.finding_about(weight.filename)
        size = human_size(weight.approx_bytes)
        text = f"{weight.filename}: {weight.what}, {size} ({weight.repo_id})"
        column.label(text=text, icon=finding_icon(finding))
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


CLASSES = (PARTPACKER_AddonPreferences,)
