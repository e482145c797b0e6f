"""Python API for scripts and the Python console. Both functions block until the parts are in
the scene and return the new part objects.

    import bpy
    from bl_ext.user_default.partpacker import api     # installed extension

    parts = api.generate("/path/robot.png", steps=30, seed=7, randomize_seed=False)
    parts = api.import_job_folder("/path/to/job_folder")

Parameters (all optional; unset ones come from the scene's PartPacker settings): steps,
cfg_scale, grid_res, seed, randomize_seed, simplify, target_faces, guidance_fraction,
remove_small_pieces, and the output options size, at_cursor, shade_smooth, new_collection. A
`seed` given without `randomize_seed` is used as it is (randomizing off).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpy

from . import job_folder
from .generation import import_options, start_generation
from .props import GENERATION_PARAMETERS, OUTPUT_OPTIONS
from .session import current, ensure_polling


class GenerationFailed(RuntimeError):
    """The backend could not generate: `code`, `message` and `hint` say why."""

    def __init__(self, code: str, message: str, hint: str = "") -> None:
        super().__init__(f"{message} ({hint})" if hint else message)
        self.code, self.message, self.hint = code, message, hint


def generate(image_path: str | Path, **params: Any) -> list[bpy.types.Object]:
    """Generate from `image_path` into the current scene; blocks until done.

    Raises TypeError for an unknown parameter, image_input.ImageInputError for a bad image,
    client.BusyError while another job runs, client.BackendUnavailable when the backend is not
    set up (or the chosen server cannot be used: no address, Blender offline), GenerationFailed
    when the backend reports an error or the job is cancelled; the same with every backend."""
    unknown = sorted(set(params) - {*GENERATION_PARAMETERS, *OUTPUT_OPTIONS})
    if unknown:
        raise TypeError(f"unknown parameter(s): {', '.join(unknown)}")
    task = start_generation(bpy.context, {**params, "image_path": str(image_path)})
    if not bpy.app.background:
        ensure_polling()  # the worker's idle timeout is watched by the timer after this returns
    current().wait(task)
    if task.error is not None:
        raise GenerationFailed(task.error.code, task.error.message, task.error.hint)
    assert task.imported is not None
    return task.imported.parts


def import_job_folder(folder: str | Path) -> list[bpy.types.Object]:
    """Import a job folder written by the backend (`python -m backend generate ... -o DIR`)."""
    return job_folder.import_job_folder(
        Path(folder), bpy.context.scene, import_options(bpy.context)
    ).parts
