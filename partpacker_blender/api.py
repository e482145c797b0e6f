"""Python API for scripts and the Python console. Both functions block until the parts are in
the scene and return the new part objects.

    import bpy
    from bl_ext.user_default.partpacker import api     # installed extension

    parts = api.generate("/path/robot.png", steps=30, seed=7, randomize_seed=False)
    parts = api.import_job_folder("/path/to/job_folder")
    api.explode(parts[0].parent, 0.5)                    # the result's Empty
    files = api.export_parts(parts[0].parent, "/tmp/robot", format="STL")
    joined = api.join_parts(parts[:2])
    pieces = api.separate_parts([joined])
    roots = api.generate_variants("/path/robot.png", count=4, grid_res=256)
    batch = api.generate_batch("/path/photos", steps=30)   # batch.summary(): done, failures
    parts = api.generate(api.image_from_blender("CAMERA"))  # or RENDER_RESULT, VIEWER_NODE, ...

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
from .importer import find_result_root
from .parts import editing
from .parts import explode as explode_slider
from .parts.batch import batch_sequence
from .parts.export import export_parts as write_part_files
from .parts.image_sources import image_from_blender as image_source_png
from .parts.result_parts import parts_of
from .parts.sequence import JobSequence, run_to_end
from .parts.variants import variant_sequence
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
    _check_parameters(params)
    task = start_generation(bpy.context, {**params, "image_path": str(image_path)})
    if not bpy.app.background:
        ensure_polling()  # the worker's idle timeout is watched by the timer after this returns
    current().wait(task)
    if task.error is not None:
        raise GenerationFailed(task.error.code, task.error.message, task.error.hint)
    assert task.imported is not None
    return task.imported.parts


def _check_parameters(params: dict[str, Any]) -> None:
    unknown = sorted(set(params) - {*GENERATION_PARAMETERS, *OUTPUT_OPTIONS})
    if unknown:
        raise TypeError(f"unknown parameter(s): {', '.join(unknown)}")


def generate_variants(
    image_path: str | Path, count: int = 4, **params: Any
) -> list[bpy.types.Object]:
    """`count` results of one image with distinct seeds (from `seed` on when given, else
    random), side by side along X; blocks until all are in. Returns their Empties in seed
    order. Raises as generate() does (GenerationFailed for the first variant that failed or
    the cancel), ValueError for a count outside 1 to 16."""
    _check_parameters(params)
    given = {**params, "image_path": str(image_path)}
    sequence = variant_sequence(bpy.context, count, given)
    run_to_end(sequence, bpy.context)
    failed = next((item for item in sequence.items if item.status != "done"), None)
    if failed is not None:
        error = failed.task.error if failed.task is not None else None
        if error is None:
            raise GenerationFailed("bad_input", failed.error)
        raise GenerationFailed(error.code, error.message, error.hint)
    return [result.root for result in sequence.results()]


def generate_batch(folder: str | Path, **params: Any) -> JobSequence:
    """Every image in `folder` (by suffix, in name order), one after another, the results on a
    grid; blocks until all are done. An image that fails does not stop the rest: the returned
    sequence's `items` say for each (`label`, `status` done/failed/cancelled, `error`,
    `imported`), `summary()` in lines. Raises image_input.ImageInputError for a folder without
    images, client.BusyError while another job runs."""
    _check_parameters(params)
    return run_to_end(batch_sequence(bpy.context, Path(folder), params), bpy.context)


def image_from_blender(source: str) -> Path:
    """A PNG of an image inside Blender, for generate(): "RENDER_RESULT", "VIEWER_NODE",
    "IMAGE_EDITOR" (the first Image Editor showing an image), "CAMERA" (a small, quick Cycles
    render of the scene's camera on a transparent background) or "CLIPBOARD" (needs an Image
    Editor open in the window). Raises image_input.ImageInputError when there is nothing to
    take, ValueError for another source."""
    return image_source_png(source, bpy.context)


def import_job_folder(folder: str | Path) -> list[bpy.types.Object]:
    """Import a job folder written by the backend (`python -m backend generate ... -o DIR`)."""
    return job_folder.import_job_folder(
        Path(folder), bpy.context.scene, import_options(bpy.context)
    ).parts


def explode(root: bpy.types.Object, amount: float) -> None:
    """Set the explode slider of the result whose Empty is `root` (0: assembled; at 1 each part
    is twice as far from the result's centre). Raises ValueError for a negative amount."""
    explode_slider.set_explode(root, amount)


def export_parts(root: bpy.types.Object, folder: str | Path, format: str = "STL") -> list[Path]:
    """Write the result's parts into `folder`, as the scene shows them: `format` "STL", "OBJ" or
    "GLB" (one file per part, named after it) or "GLB_SCENE" (one file, a node per part).
    Returns the files. Raises ValueError for another format, parts.export.ExportError when
    there is nothing to write or the folder cannot be written."""
    return write_part_files(root, Path(folder), format)


def result_parts(root: bpy.types.Object) -> list[bpy.types.Object]:
    """The part objects of the result whose Empty is `root`, in name order."""
    return parts_of(root)


def join_parts(parts: list[bpy.types.Object]) -> bpy.types.Object:
    """Join two or more parts of one result into one part (explode keeps working); returns it.
    Raises parts.editing.PartsEditError for fewer parts or parts of different results."""
    return editing.join_parts(_root_of(parts), parts)


def separate_parts(parts: list[bpy.types.Object]) -> list[bpy.types.Object]:
    """Split each of `parts` into one part per connected piece; returns the parts that came out.
    Raises parts.editing.PartsEditError as join_parts does."""
    return editing.separate_parts(_root_of(parts), parts)


def isolate_part(part: bpy.types.Object) -> None:
    """Show only `part` of its result; called again, show every part."""
    editing.toggle_isolated(part, _root_of([part]))


def _root_of(parts: list[bpy.types.Object]) -> bpy.types.Object:
    root = find_result_root(parts[0]) if parts else None
    if root is None:
        raise editing.PartsEditError("these objects are not parts of a PartPacker result")
    return root
