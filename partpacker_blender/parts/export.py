"""Export a result's parts: one file per part (STL, OBJ, GLB) or one GLB with a node per part,
named after the part objects, as the scene shows them (placed, exploded, modifiers applied)."""

from __future__ import annotations

from pathlib import Path

import bpy

from ..problems import Problem
from .file_writers import file_names, write_glb, write_obj, write_stl
from .mesh_arrays import world_mesh
from .result_parts import parts_of

FORMATS = {
    "STL": ("STL", "One binary STL per part (for printing)", ".stl"),
    "OBJ": ("OBJ", "One OBJ per part, with its colour in a .mtl beside it", ".obj"),
    "GLB": ("GLB", "One glTF binary per part", ".glb"),
    "GLB_SCENE": ("One GLB", "One glTF binary holding every part as a node", ".glb"),
}
"""format: (label, description, file suffix)."""


class ExportError(Problem):
    """The parts cannot be written: nothing to write, or the folder cannot take the files."""


def export_parts(root: bpy.types.Object, folder: Path, file_format: str = "STL") -> list[Path]:
    """Write the parts of the result whose Empty is `root` into `folder` (made if missing);
    the files written. Parts without faces are left out."""
    if file_format not in FORMATS:
        raise ValueError(f"unknown format {file_format!r}: use one of {', '.join(FORMATS)}")
    depsgraph = bpy.context.evaluated_depsgraph_get()
    meshes = [world_mesh(part, depsgraph) for part in parts_of(root)]
    meshes = [mesh for mesh in meshes if len(mesh.faces)]
    if not meshes:
        raise ExportError(f"{root.name} has no parts with faces to export")
    suffix = FORMATS[file_format][2]
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if file_format == "GLB_SCENE":
            path = folder / file_names([root.name], suffix)[0]
            write_glb(path, meshes)
            return [path]
        paths = [folder / name for name in file_names([m.name for m in meshes], suffix)]
        for path, mesh in zip(paths, meshes, strict=True):
            _write_one(file_format, path, mesh)
    except OSError as error:
        raise ExportError(
            f"the parts cannot be written to {folder}: {error.strerror or error}",
            "choose a folder you can write to",
        ) from error
    return paths


def _write_one(file_format: str, path: Path, mesh) -> None:
    if file_format == "STL":
        write_stl(path, mesh)
    elif file_format == "OBJ":
        write_obj(path, mesh)
    else:
        write_glb(path, [mesh])
