"""PartPacker for Blender: one image in, a 3D model split into parts out, each part an object.

The model runs in a separate backend process (the `backend` package, its own Python with
torch); this package only uses bpy, the standard library and Blender's numpy.
"""

import atexit

import bpy

from . import (
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
from .setup import backend_check
from .setup import operators as setup_operators
from .setup import state as setup_state

MODULES = (props, preferences, operators, setup_operators, ui)


def register() -> None:
    for module in MODULES:
        for cls in module.CLASSES:
            bpy.utils.register_class(cls)
    bpy.types.Scene.partpacker = bpy.props.PointerProperty(type=props.PARTPACKER_PG_settings)
    remote = RemoteClient(remote_preferences.remote_settings)
    local = WorkerClient(settings.worker_settings)
    session.start_session(BackendSwitch(local, remote, remote_preferences.uses_remote))
    bpy.app.handlers.load_pre.append(_on_load_pre)
    bpy.app.handlers.save_pre.append(result_paths.before_save)
    bpy.app.handlers.save_post.append(result_paths.after_save)
    atexit.register(session.stop_worker)  # no child process outlives Blender
    atexit.register(setup_state.current().cancel)


def unregister() -> None:
    atexit.unregister(setup_state.current().cancel)
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
    del bpy.types.Scene.partpacker
    for module in reversed(MODULES):
        for cls in reversed(module.CLASSES):
            bpy.utils.unregister_class(cls)


@bpy.app.handlers.persistent
def _on_load_pre(*_args) -> None:
    session.current().forget_scene_results()
