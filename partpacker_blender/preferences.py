"""Add-on preferences, read everywhere through `get_preferences()` and `worker_settings()`."""

import os
from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty

from . import session
from .client import WorkerSettings

BACKEND_PYTHON_ENV = "PARTPACKER_BACKEND_PYTHON"
"""Default backend Python when the preference is empty (dev.py and the tests set it)."""


class PARTPACKER_AddonPreferences(bpy.types.AddonPreferences):
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
        description="Keep each network in main memory except while it runs (about a third of "
        "the GPU memory, a few seconds slower)",
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
    output_dir: StringProperty(
        name="Job Folders",
        subtype="DIR_PATH",
        description="Where each generation's files go (empty: the extension's user folder)",
    )

    def draw(self, context: bpy.types.Context) -> None:
        from .setup.ui import draw_setup  # setup imports this module

        draw_preferences(self, self.layout)
        draw_setup(self.layout, context)


def draw_preferences(prefs: PARTPACKER_AddonPreferences, layout: bpy.types.UILayout) -> None:
    layout.use_property_split = True
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
    report = session.current().doctor_report
    if report is None:
        return
    column = layout.box().column(align=True)
    for finding in report.findings:
        column.label(text=finding.text, icon="CHECKMARK" if finding.ok else "ERROR")
        if finding.hint:
            column.label(text=f"    {finding.hint}")


def get_preferences(context: bpy.types.Context | None = None) -> PARTPACKER_AddonPreferences:
    return (context or bpy.context).preferences.addons[__package__].preferences


def backend_root() -> Path:
    """The folder holding the `backend` package: `worker/` in the packaged extension (build.py's
    BACKEND_FOLDER, apart from the add-on's own modules), else a development checkout's root."""
    here = Path(__file__).resolve().parent
    packaged = here / "worker"
    return next((d for d in (packaged, here.parent) if (d / "backend").is_dir()), packaged)


def user_folder() -> Path:
    """Writable data of the add-on, never inside the add-on's own folder."""
    if __package__.startswith("bl_ext."):
        return Path(bpy.utils.extension_path_user(__package__, create=True))
    return Path(bpy.utils.user_resource("DATAFILES", path="partpacker", create=True))


def jobs_folder(context: bpy.types.Context | None = None) -> Path:
    chosen = get_preferences(context).output_dir
    return Path(bpy.path.abspath(chosen)) if chosen else user_folder() / "jobs"


def worker_settings(context: bpy.types.Context | None = None) -> WorkerSettings:
    prefs = get_preferences(context)
    python = bpy.path.abspath(prefs.backend_python) or os.environ.get(BACKEND_PYTHON_ENV, "")
    use_folder = prefs.weights_source == "FOLDER" and prefs.weights_dir
    use_cache = prefs.weights_source == "HF_CACHE" and prefs.cache_dir
    # While Blender is offline the backend downloads nothing: no weights, no rembg model.
    offline = {} if bpy.app.online_access else {"HF_HUB_OFFLINE": "1"}
    return WorkerSettings(
        python=Path(python) if python else None,
        backend_root=backend_root(),
        weights_dir=Path(bpy.path.abspath(prefs.weights_dir)) if use_folder else None,
        cache_dir=Path(bpy.path.abspath(prefs.cache_dir)) if use_cache else None,
        device=prefs.device,
        low_memory=prefs.low_memory,
        weights_cache=user_folder() / "weights-cache" if prefs.fast_start_cache else None,
        env=offline,
        hang_timeout=float(prefs.hang_timeout),
        idle_timeout=60.0 * prefs.keep_loaded_minutes if prefs.keep_loaded_minutes else None,
    )


CLASSES = (PARTPACKER_AddonPreferences,)
