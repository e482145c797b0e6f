"""Operators: read properties, call one function, report. The work lives in plain modules."""

import random
import time
from pathlib import Path

import bpy
from bpy.props import StringProperty

from . import api, notices, session
from .client import BackendUnavailable, BusyError, WorkerState
from .generation import start_generation, start_preparing
from .image_input import ImageInputError
from .importer import ROOT_KEY, find_result_root
from .job_folder import JobFolderError
from .parts_file import PartsFileError
from .problems import described, report_problem
from .props import (
    GENERATION_PARAMETERS,
    MAX_SEED,
    OUTPUT_OPTIONS,
    SCRIPT_ONLY,
    generation_properties,
    output_properties,
)
from .readiness import backend_problem


def can_start_job(cls, context: bpy.types.Context) -> bool:
    """An operator's poll: False, with the reason shown, while a job runs or while the backend
    is not set up (a check of two files: poll runs at every redraw)."""
    if session.current().task is not None:
        cls.poll_message_set("A job is already running: wait for it to finish or cancel it")
        return False
    problem = backend_problem(context)
    if problem is not None:
        cls.poll_message_set(described(problem.message, problem.hint))
        return False
    return True


def _run_task(operator: bpy.types.Operator, start) -> set[str]:
    """Start a task; in background mode (no timers) block until it has ended."""
    try:
        task = start()
    except (ImageInputError, BackendUnavailable) as error:
        return report_problem(operator, error.message, error.hint)
    except BusyError:
        return report_problem(
            operator, "a job is already running", "wait for it to finish or cancel it"
        )
    if not bpy.app.background:
        session.ensure_polling()
        return {"FINISHED"}
    session.current().wait(task)
    if task.imported is not None:
        operator.report({"INFO"}, notices.latest())
    if task.error is None:
        return {"FINISHED"}
    if task.error.is_cancellation:
        operator.report({"WARNING"}, f"{task.kind.capitalize()} cancelled")
        return {"CANCELLED"}
    return report_problem(operator, task.error.message, task.error.hint)


class PARTPACKER_OT_generate(bpy.types.Operator):
    """Generate a 3D model, split into parts, from the image"""

    bl_idname = "partpacker.generate"
    bl_label = "Generate"

    __annotations__ = {
        "image_path": StringProperty(
            name="Image Path",
            subtype="FILE_PATH",
            options=SCRIPT_ONLY,
            description="Image file (empty: the panel's image)",
        ),
        **generation_properties(options=SCRIPT_ONLY),
        **output_properties(options=SCRIPT_ONLY),
    }

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return can_start_job(cls, context)

    def execute(self, context: bpy.types.Context) -> set[str]:
        names = ("image_path", *GENERATION_PARAMETERS, *OUTPUT_OPTIONS)
        given = {n: getattr(self, n) for n in names if self.properties.is_property_set(n)}
        return _run_task(self, lambda: start_generation(context, given))


class PARTPACKER_OT_prepare(bpy.types.Operator):
    """Remove the background and recentre the image as the model will see it"""

    bl_idname = "partpacker.prepare"
    bl_label = "Prepare"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return can_start_job(cls, context)

    def execute(self, context: bpy.types.Context) -> set[str]:
        return _run_task(self, lambda: start_preparing(context))


class PARTPACKER_OT_cancel(bpy.types.Operator):
    """Cancel the running job"""

    bl_idname = "partpacker.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return session.current().task is not None

    def execute(self, context: bpy.types.Context) -> set[str]:
        session.current().cancel()
        return {"FINISHED"}


class PARTPACKER_OT_random_seed(bpy.types.Operator):
    """Pick a new random seed"""

    bl_idname = "partpacker.random_seed"
    bl_label = "Random Seed"
    bl_options = {"UNDO"}  # noqa: RUF012 (Blender reads a set)

    def execute(self, context: bpy.types.Context) -> set[str]:
        context.scene.partpacker.seed = random.randrange(MAX_SEED)
        return {"FINISHED"}


class PARTPACKER_OT_free_memory(bpy.types.Operator):
    """Unload the models from GPU memory; the next job loads them again"""

    bl_idname = "partpacker.free_memory"
    bl_label = "Free GPU Memory"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return session.current().client.state is WorkerState.READY

    def execute(self, context: bpy.types.Context) -> set[str]:
        return _run_task(self, session.current().start_unload)


class PARTPACKER_OT_rerun(bpy.types.Operator):
    """Generate again from the selected result's image and settings, with a new seed"""

    bl_idname = "partpacker.rerun"
    bl_label = "Generate Again"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return find_result_root(context.active_object) is not None and can_start_job(cls, context)

    def execute(self, context: bpy.types.Context) -> set[str]:
        root = find_result_root(context.active_object)
        assert root is not None, "poll() found it"
        metadata = root[ROOT_KEY].to_dict()
        params = metadata.get("params", {})
        given = {n: params[n] for n in GENERATION_PARAMETERS if n in params}
        given.update(image_path=metadata.get("image", ""), randomize_seed=True)
        return _run_task(self, lambda: start_generation(context, given))


class PARTPACKER_OT_import_folder(bpy.types.Operator):
    """Import the parts of a job folder written by the backend"""

    bl_idname = "partpacker.import_folder"
    bl_label = "Import Job Folder"
    # No UNDO flag: the import pushes its one undo step itself (a result that arrives from the
    # polling timer has no operator to push it); the flag would add a second, empty one.

    directory: StringProperty(subtype="DIR_PATH", options=SCRIPT_ONLY)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        started = time.monotonic()
        try:
            parts = api.import_job_folder(Path(bpy.path.abspath(self.directory)))
        except (JobFolderError, PartsFileError) as error:
            return report_problem(self, str(error))
        seconds = time.monotonic() - started
        notices.announce(notices.imported_text(len(parts), seconds), operator=self)
        return {"FINISHED"}


class PARTPACKER_OT_show_preferences(bpy.types.Operator):
    """Open the add-on's preferences, where the backend is set up"""

    bl_idname = "partpacker.show_preferences"
    bl_label = "Set Up Backend..."

    def execute(self, context: bpy.types.Context) -> set[str]:
        bpy.ops.preferences.addon_show(module=__package__)
        return {"FINISHED"}


CLASSES = (
    PARTPACKER_OT_generate,
    PARTPACKER_OT_prepare,
    PARTPACKER_OT_cancel,
    PARTPACKER_OT_random_seed,
    PARTPACKER_OT_free_memory,
    PARTPACKER_OT_rerun,
    PARTPACKER_OT_import_folder,
    PARTPACKER_OT_show_preferences,
)
