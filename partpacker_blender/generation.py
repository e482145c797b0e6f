"""From the scene settings (and a script's overrides) to a request for the backend."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import bpy

from .image_input import ImageInputError, checked_image_file, datablock_image_file, safe_stem
from .importer import ImportOptions
from .props import GENERATION_PARAMETERS, OUTPUT_OPTIONS
from .session import GenerateRequest, Task, current
from .settings import jobs_folder

INPUT_FOLDER = "inputs"
"""Beside the job folders: each job's copy of its input image, in a folder named as its job's."""
PREVIEW_FOLDER = "previews"
"""In the job folders: Prepare's segmentations (and a datablock's image written for it)."""


def input_image(settings: Any, scratch: Path, image_path: str = "") -> tuple[Path, str]:
    """The image file for the backend and the stem results are named after; a datablock that
    is not a file on disk is written into `scratch`.

    `image_path` (a script's argument) wins over the panel's choice. Raises ImageInputError."""
    if image_path or settings.image_source == "FILE":
        path = checked_image_file(image_path or settings.image_path)
        return path, safe_stem(path.name)
    image = settings.image
    return datablock_image_file(image, scratch), safe_stem(image.name)


def kept_input(image: Path, job_folder: Path) -> Path:
    """A copy of the input image for one job, in INPUT_FOLDER/<job folder's name>/ beside the job
    folders (a job folder holds the backend's files only): what the backend reads, and what
    Generate Again reads later, whatever happens to the original or to another image of its
    name."""
    copy = job_folder.parent / INPUT_FOLDER / job_folder.name / image.name
    try:
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(image, copy)
    except OSError as error:
        raise ImageInputError(
            f"the image cannot be copied into {copy.parent}: {error}",
            "choose Job Folders that can be written in the add-on preferences",
        ) from error
    return copy


def merged_values(settings: Any, overrides: Mapping[str, Any], names: tuple[str, ...]) -> dict:
    """Each of `names` from `overrides` where given, else from the scene settings."""
    return {
        name: overrides[name] if name in overrides else getattr(settings, name) for name in names
    }


def generate_request(
    context: bpy.types.Context,
    image: Path,
    stem: str,
    overrides: Mapping[str, Any],
) -> GenerateRequest:
    if "seed" in overrides and "randomize_seed" not in overrides:
        overrides = {**overrides, "randomize_seed": False}  # a seed given is a seed meant
    params = merged_values(context.scene.partpacker, overrides, GENERATION_PARAMETERS)
    return GenerateRequest(
        image=image,
        stem=stem,
        params=params,
        options=import_options(context, overrides),
        output_dir=new_job_folder(context, stem),
        scene_name=context.scene.name,
    )


def import_options(
    context: bpy.types.Context, overrides: Mapping[str, Any] | None = None
) -> ImportOptions:
    """Output options from the scene settings; the 3D cursor as it is now."""
    output = merged_values(context.scene.partpacker, overrides or {}, OUTPUT_OPTIONS)
    location = tuple(context.scene.cursor.location) if output["at_cursor"] else (0.0, 0.0, 0.0)
    return ImportOptions(
        size=output["size"],
        location=location,
        shade_smooth=output["shade_smooth"],
        new_collection=output["new_collection"],
    )


def start_generation(context: bpy.types.Context, given: Mapping[str, Any]) -> Task:
    """Start a generate job from the scene settings and `given` overrides (image_path, any
    parameter or output option). Raises ImageInputError, client.BusyError, BackendUnavailable;
    no copy of the image is left behind then."""
    with tempfile.TemporaryDirectory(prefix="partpacker-input-") as scratch:
        source, stem = input_image(
            context.scene.partpacker, Path(scratch), given.get("image_path", "")
        )
        request = generate_request(context, source, stem, given)
        kept = kept_input(source, request.output_dir)
        try:
            return current().start_generate(dataclasses.replace(request, image=kept))
        except Exception:
            shutil.rmtree(kept.parent, ignore_errors=True)
            raise


def new_job_folder(context: bpy.types.Context, stem: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return jobs_folder(context) / f"{stamp}_{stem}_{uuid.uuid4().hex[:6]}"


def start_preparing(context: bpy.types.Context) -> Task:
    """Prepare the panel's image: its segmentation in PREVIEW_FOLDER of the job folders."""
    folder = jobs_folder(context) / PREVIEW_FOLDER
    image, stem = input_image(context.scene.partpacker, folder / INPUT_FOLDER)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ImageInputError(
            f"the folder {folder} cannot be created: {error}",
            "choose Job Folders that can be written in the add-on preferences",
        ) from error
    return current().start_prepare(image, folder / f"{stem}.png", context.scene.name)
