"""What the preferences say, in the terms the rest of the add-on needs: the add-on's folders and
the worker's launch settings. Preferences are read only through `get_preferences()`."""

import os
from pathlib import Path

import bpy

from .client import WorkerSettings

BACKEND_PYTHON_ENV = "PARTPACKER_BACKEND_PYTHON"
"""Default backend Python when the preference is empty (dev.py and the tests set it)."""
ENVIRONMENT_FOLDER = "backend-env"
BESIDE_BLEND_FOLDER = "partpacker"
UNSAVED_FILES_FOLDER = "PartPacker"


def get_preferences(context: bpy.types.Context | None = None) -> bpy.types.AddonPreferences:
    """The add-on's preferences (preferences.py's PARTPACKER_AddonPreferences)."""
    return (context or bpy.context).preferences.addons[__package__].preferences


def save_preference(name: str, value: object) -> None:
    """Set a preference from code and have it saved as a user's own edit is (Blender saves
    changed preferences at exit, or with Save Preferences)."""
    setattr(get_preferences(), name, value)
    bpy.context.preferences.is_dirty = True


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


def environment_dir(context: bpy.types.Context | None = None) -> Path:
    """The backend's environment that setup builds: in the chosen Environment Folder, else in the
    add-on's user folder."""
    chosen = get_preferences(context).environment_folder
    return (Path(bpy.path.abspath(chosen)) if chosen else user_folder()) / ENVIRONMENT_FOLDER


def jobs_folder(context: bpy.types.Context | None = None) -> Path:
    """Where job folders go: the chosen Job Folders, else a `partpacker` folder beside the saved
    .blend file, else Documents/PartPacker. Never the extension's user folder, which Blender
    deletes when the extension is uninstalled or reinstalled."""
    chosen = get_preferences(context).output_dir
    if chosen:
        return Path(bpy.path.abspath(chosen))
    if bpy.data.filepath:
        return Path(bpy.data.filepath).resolve().parent / BESIDE_BLEND_FOLDER
    return documents_folder() / UNSAVED_FILES_FOLDER


def documents_folder() -> Path:
    """The user's Documents folder (the home folder where there is none)."""
    documents = Path.home() / "Documents"
    return documents if documents.is_dir() else Path.home()


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
