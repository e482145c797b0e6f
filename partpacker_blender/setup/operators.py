"""Operators of the preferences: build or choose the backend's Python (starting.py), fetch the
weights, check the backend, cancel. Each starts one run (state.py), follows it and reports."""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import StringProperty

from .. import timers
from ..child_process import backend_environment
from ..client import BackendUnavailable, check_backend_files
from ..problems import Problem, report_problem
from ..props import SCRIPT_ONLY
from ..settings import get_preferences, worker_settings
from . import backend_check, state
from .starting import OFFLINE_MESSAGE, start_environment_setup, start_using_python
from .weights import download_step


def follow(operator: bpy.types.Operator, what: str) -> set[str]:
    """In the UI a timer polls the run; in background mode (no timers) block until it ends."""
    if not bpy.app.background:
        timers.keep_polling(_tick)  # a file loaded meanwhile must not strand the run
        return {"FINISHED"}
    last = state.current().wait()
    status = last.status if last is not None else None
    if status is not None and status.cancelled:
        operator.report({"WARNING"}, f"{what} cancelled")
        return {"CANCELLED"}
    if status is not None and status.error:
        operator.report({"ERROR"}, status.error)
        return {"CANCELLED"}
    operator.report({"INFO"}, f"{what}: done")
    return {"FINISHED"}


def stop_following() -> None:
    """The add-on is going away: end the running setup step and its timer."""
    state.current().cancel()
    timers.stop_polling(_tick)


def _tick() -> float | None:
    interval = state.current().poll()
    timers.redraw("PREFERENCES")
    if interval is None:
        timers.redraw_sidebar()  # the panel's backend status may have changed with the run
    return interval


def set_up_environment(
    operator: bpy.types.Operator, python_text: str, pip_options: str = ""
) -> set[str]:
    try:
        env_dir = start_environment_setup(python_text, pip_options)
    except Problem as error:
        return report_problem(operator, error.message, error.hint)
    operator.report({"INFO"}, f"Setting up the backend in {env_dir}")
    return follow(operator, "Backend setup")


def _idle_and_online(cls, context: bpy.types.Context) -> bool:
    if not bpy.app.online_access:
        cls.poll_message_set(f"{OFFLINE_MESSAGE}: nothing can be downloaded")
        return False
    return no_setup_running(cls, context)


def no_setup_running(cls, context: bpy.types.Context) -> bool:
    """An operator's poll: False, with the reason shown, while a setup step runs."""
    if state.current().activity is not None:
        cls.poll_message_set("Wait for the running setup step or cancel it")
        return False
    return True


class PARTPACKER_OT_setup_backend(bpy.types.Operator):
    """Create a Python environment for the backend in the add-on's user folder and install the
    backend's packages into it (a few GB: PyTorch and the mesh libraries)"""

    bl_idname = "partpacker.setup_backend"
    bl_label = "Set Up Backend"

    python: StringProperty(
        name="Python",
        subtype="FILE_PATH",
        description="The Python (3.10 or newer) to create the environment from "
        "(empty: the newest one found on this computer)",
        options=SCRIPT_ONLY,
    )
    pip_options: StringProperty(
        name="pip Options",
        description="Extra pip arguments, e.g. '--no-index --find-links FOLDER' to install "
        "from a folder of wheels",
        options=SCRIPT_ONLY,
    )

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        # Offline too: a script may still install from a folder of wheels.
        return no_setup_running(cls, context)

    def execute(self, context: bpy.types.Context) -> set[str]:
        return set_up_environment(self, self.python, self.pip_options)


class PARTPACKER_OT_setup_backend_with_python(bpy.types.Operator):
    """Pick the Python (3.10 or newer) to create the backend's environment from"""

    bl_idname = "partpacker.setup_backend_with_python"
    bl_label = "Set Up with Another Python..."

    filepath: StringProperty(name="Python", subtype="FILE_PATH", options=SCRIPT_ONLY)

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _idle_and_online(cls, context)

    def invoke(self, context: bpy.types.Context, event) -> set[str]:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        return set_up_environment(self, self.filepath)


class PARTPACKER_OT_use_existing_python(bpy.types.Operator):
    """Use a Python environment that already has the backend's packages, then check it"""

    bl_idname = "partpacker.use_existing_python"
    bl_label = "Use Existing Python"

    filepath: StringProperty(name="Python", subtype="FILE_PATH", options=SCRIPT_ONLY)

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return no_setup_running(cls, context)

    def invoke(self, context: bpy.types.Context, event) -> set[str]:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            start_using_python(Path(bpy.path.abspath(self.filepath)))
        except Problem as error:
            return report_problem(self, error.message, error.hint)
        return follow(self, "Backend check")


class PARTPACKER_OT_download_weights(bpy.types.Operator):
    """Download the model weights (about 11 GB) into the weights folder or the Hugging Face
    cache; a cancelled download resumes where it stopped"""

    bl_idname = "partpacker.download_weights"
    bl_label = "Download Weights"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _idle_and_online(cls, context)

    def execute(self, context: bpy.types.Context) -> set[str]:
        prefs = get_preferences(context)
        settings = worker_settings(context)
        try:
            check_backend_files(settings)
            if prefs.weights_source == "FOLDER" and settings.weights_dir is None:
                raise Problem("no weights folder is chosen", "choose the folder first")
        except Problem as error:  # BackendUnavailable included
            return report_problem(self, error.message, error.hint)
        assert settings.python is not None
        step = download_step(
            settings.python,
            settings.backend_root,
            backend_environment(settings.backend_root, settings.env),
            local_dir=settings.weights_dir,
            cache_dir=settings.cache_dir,
        )
        python = settings.python
        state.current().start([step], lambda _: backend_check.current().start(python))
        return follow(self, "Weights download")


class PARTPACKER_OT_check_backend(bpy.types.Operator):
    """Ask the backend what is installed and whether the weights are in place"""

    bl_idname = "partpacker.check_backend"
    bl_label = "Check Backend"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return no_setup_running(cls, context)

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = worker_settings(context)
        try:
            check_backend_files(settings)
        except BackendUnavailable as error:
            return report_problem(self, error.message, error.hint)
        assert settings.python is not None, "check_backend_files found it"
        backend_check.current().start(settings.python)  # imports torch: never in the UI thread
        return follow(self, "Backend check")


class PARTPACKER_OT_cancel_setup(bpy.types.Operator):
    """Stop the running setup step (a download resumes next time)"""

    bl_idname = "partpacker.cancel_setup"
    bl_label = "Cancel"

    def execute(self, context: bpy.types.Context) -> set[str]:
        if not state.current().cancel():
            self.report({"INFO"}, "Nothing to cancel")
        return {"FINISHED"}


CLASSES = (
    PARTPACKER_OT_setup_backend,
    PARTPACKER_OT_setup_backend_with_python,
    PARTPACKER_OT_use_existing_python,
    PARTPACKER_OT_download_weights,
    PARTPACKER_OT_check_backend,
    PARTPACKER_OT_cancel_setup,
)
