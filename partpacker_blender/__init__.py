"""PartPacker for Blender: one image in, a 3D model split into parts out, each part an object.

The model runs in a separate backend process (the `backend` package, its own Python with
torch); this package only uses bpy, the standard library and Blender's numpy.
"""

import atexit

import bpy

from . import (
    details,
    discarded,
    notices,
    operators,
    preferences,
    props,
    remote_preferences,
    result_paths,
    session,
    settings,
    ui,
)
from .client import WorkerClient
from .client.remote import RemoteClient
from .client.switch import BackendSwitch
from .parts import (
    history_operators,
    history_panel,
    image_source_ui,
    sequence_operators,
    sequence_panel,
)
from .parts import operators as parts_operators
from .parts import panels as parts_panels
from .parts import props as parts_props
from .setup import backend_check
from .setup import operators as setup_operators
from .setup import state as setup_state

MODULES = (
    props,
    preferences,
    operators,
    details,
    notices,
    setup_operators,
    ui,
    parts_props,
    parts_operators,
    parts_panels,
    sequence_operators,
    sequence_panel,
    history_operators,
    history_panel,
    image_source_ui,
)


def register() -> None:
    for module in MODULES:
        for cls in module.CLASSES:
            bpy.utils.register_class(cls)
    bpy.types.Scene.partpacker = bpy.props.PointerProperty(type=props.PARTPACKER_PG_settings)
    parts_props.register_properties()
    remote = RemoteClient(remote_preferences.remote_settings)
    local = WorkerClient(settings.worker_settings)
    session.start_session(BackendSwitch(local, remote, remote_preferences.uses_remote))
    bpy.app.handlers.load_pre.append(_on_load_pre)
    bpy.app.handlers.save_pre.append(result_paths.before_save)
    bpy.app.handlers.save_post.append(result_paths.after_save)
    atexit.register(session.stop_worker)  # no child process outlives Blender
    atexit.register(discarded.note_running_job)  # atexit runs it first: before the job is stopped
    atexit.register(setup_state.current().cancel)
    discarded.watch(settings.user_folder())


def unregister() -> None:
    atexit.unregister(setup_state.current().cancel)
    discarded.note_running_job()  # Blender may disable every add-on as it quits: this runs then
    atexit.unregister(discarded.note_running_job)
    atexit.unregister(session.stop_worker)
    setup_operators.stop_following()
    backend_check.current().report = None
    for handlers, handler in (
        (bpy.app.handlers.load_pre, _on_load_pre),
        (bpy.app.handlers.save_pre, result_paths.before_save),
        (bpy.app.handlers.save_post, result_paths.after_save),
    ):
        if handler in handlers:
            handlers.remove(handler)
    session.end_session()
    parts_props.unregister_properties()
    history_panel.release_previews()
    del bpy.types.Scene.partpacker
    for module in reversed(MODULES):
        for cls in reversed(module.CLASSES):
            bpy.utils.unregister_class(cls)


@bpy.app.handlers.persistent
def _on_load_pre(*_args) -> None:
    task = session.current().task
    session.current().forget_scene_results()
    if task is not None and task.kind != "unload":
        notices.remember(f"Opening another file cancelled the {task.kind} job ({task.label})")
