"""The paths a .blend file keeps of its results (their job folder and input image, in the
result's metadata): relative ("//partpacker/...") when inside the .blend file's folder, so that
the project folder can be moved or copied whole; absolute otherwise (an unsaved file's results in
Documents/PartPacker). Saving the file to another folder re-expresses them from there, as Blender
does for its own relative paths."""

from __future__ import annotations

from pathlib import Path

import bpy

from .importer import ROOT_KEY

PATH_KEYS = ("job_folder", "image")


def stored_path(path: Path | str, blend_file: str | None = None) -> str:
    """`path` as a result keeps it: relative to the (saved) .blend file's folder when inside it."""
    blend = bpy.data.filepath if blend_file is None else blend_file
    path = Path(path)
    if blend and path.is_absolute():
        folder = Path(blend).resolve().parent
        try:
            return "//" + path.resolve().relative_to(folder).as_posix()
        except ValueError:
            pass  # elsewhere: absolute
    return str(path)


def absolute_path(text: str, blend_file: str | None = None) -> Path:
    """A kept path as an absolute one ("//" is the .blend file's folder)."""
    blend = bpy.data.filepath if blend_file is None else blend_file
    if text.startswith("//") and blend:
        return Path(blend).resolve().parent / text[2:]
    return Path(text)


def remap(old_blend: str, new_blend: str) -> None:
    """Re-express every result's paths, kept relative to `old_blend`, for `new_blend`."""
    for obj in bpy.data.objects:
        metadata = obj.get(ROOT_KEY)
        if obj.library is not None or not hasattr(metadata, "keys"):
            continue  # a linked result keeps its library's paths; not a result
        for key in PATH_KEYS:
            value = metadata.get(key)
            if isinstance(value, str) and value:
                metadata[key] = stored_path(absolute_path(value, old_blend), new_blend)


@bpy.app.handlers.persistent
def before_save(filepath: str, *_args) -> None:
    """The file is written to `filepath`: its results' paths, from there (bpy.data.filepath is
    still the file's old place here)."""
    if filepath and filepath != bpy.data.filepath:
        remap(bpy.data.filepath, filepath)


@bpy.app.handlers.persistent
def after_save(filepath: str, *_args) -> None:
    """After Save Copy the file stays where it was: its paths, from there again."""
    if filepath and filepath != bpy.data.filepath:
        remap(filepath, bpy.data.filepath)
