"""Parts (parts.npz, or a GLB: ours or the public Space's) -> Blender objects: one mesh object
per part under one Empty, in one undo step. The result arrives selected, its Empty active, beside
what already stands at its spot, and named so that no two results share a name (robot_7,
robot_7-2; their parts robot_7_part_000...).

Callable from any script without operators:

    from bl_ext.user_default.partpacker.importer import ImportOptions, import_parts
    result = import_parts(Path("job/parts.npz"), bpy.context.scene, stem="robot", seed=7)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bpy
import numpy as np

from .glb_file import read_glb
from .parts.explode import add_explode
from .parts_file import Part, read_parts
from .placement import Box, free_spot

ROOT_KEY = "partpacker"
"""Custom property of the parent Empty that holds the generation's metadata."""


@dataclass(frozen=True)
class ImportOptions:
    size: float = 2.0
    """Metres spanned by the model's [-1, 1] cube."""
    location: tuple[float, float, float] = (0.0, 0.0, 0.0)
    shade_smooth: bool = True
    new_collection: bool = True
    beside_others: bool = True
    """Move the result along +X, out of whatever visible object occupies `location`."""


@dataclass
class ImportedParts:
    root: bpy.types.Object
    parts: list[bpy.types.Object] = field(default_factory=list)
    collection: bpy.types.Collection | None = None


def import_parts(
    parts_path: Path,
    scene: bpy.types.Scene,
    *,
    stem: str,
    seed: int | None = None,
    options: ImportOptions | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> ImportedParts:
    """Read and check `parts_path` (a .npz or a .glb), then build the objects in `scene`.

    Nothing is created when the file is invalid (parts_file.PartsFileError)."""
    parts_path = Path(parts_path)
    parts = read_glb(parts_path) if parts_path.suffix == ".glb" else read_parts(parts_path)
    options = options or ImportOptions()
    view_layer = _view_layer_of(scene)
    name = unused_name(stem if seed is None else f"{stem}_{seed}", [p.name for p in parts])
    location = options.location
    if options.beside_others:
        location = free_spot(location, options.size / 2, _occupied(scene, view_layer))
    collection = _target_collection(scene, name, options.new_collection)
    root = _make_root(name, collection, options, location, metadata or {})
    objects = [_make_part_object(part, name, root, collection, options) for part in parts]
    add_explode(root)
    select_result(view_layer, root, objects)
    push_undo_step(f"PartPacker: import {name}")
    return ImportedParts(root, objects, collection if options.new_collection else None)


def unused_name(base: str, part_names: Sequence[str]) -> str:
    """`base`, or `base-2`, `base-3`...: the first whose result, collection, parts, meshes and
    materials would all have names of their own (Blender would add ".001" otherwise)."""
    data = bpy.data

    def taken(name: str) -> bool:
        parts = [f"{name}_{part}" for part in part_names]
        return (
            name in data.objects
            or name in data.collections
            or any(p in data.objects or p in data.meshes or p in data.materials for p in parts)
        )

    name, number = base, 1
    while taken(name):
        number += 1
        name = f"{base}-{number}"
    return name


def select_result(
    view_layer: bpy.types.ViewLayer, root: bpy.types.Object, parts: Sequence[bpy.types.Object]
) -> None:
    """The new result alone selected and its Empty active, as a click in the Outliner leaves it
    (so Selected Result shows it)."""
    for obj in view_layer.objects:
        obj.select_set(False, view_layer=view_layer)
    for obj in (root, *parts):
        obj.select_set(True, view_layer=view_layer)
    view_layer.objects.active = root


def find_result_root(obj: bpy.types.Object | None) -> bpy.types.Object | None:
    """The Empty of the result `obj` belongs to (itself or a parent), or None."""
    while obj is not None and ROOT_KEY not in obj:
        obj = obj.parent
    return obj


def gltf_to_blender(vertices: np.ndarray) -> np.ndarray:
    """glTF (x, y, z), Y up -> Blender (x, -z, y), Z up: as Blender's glTF importer turns it."""
    x, y, z = vertices[:, 0], vertices[:, 1], vertices[:, 2]
    return np.stack([x, -z, y], axis=1).astype(np.float32)


def srgb_to_linear(srgb_bytes: Sequence[int]) -> tuple[float, ...]:
    """sRGB bytes RGBA -> linear floats; alpha stays linear."""
    channels = np.asarray(srgb_bytes, dtype=np.float64) / 255.0
    rgb = channels[:3]
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    return (*(float(c) for c in linear), float(channels[3]))


def build_mesh(name: str, vertices: np.ndarray, faces: np.ndarray) -> bpy.types.Mesh:
    """A triangle mesh from checked arrays, written straight into its attributes (the fast path)."""
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(vertices))
    mesh.loops.add(faces.size)
    mesh.polygons.add(len(faces))
    if len(vertices):
        mesh.attributes["position"].data.foreach_set("vector", vertices.ravel())
    if len(faces):
        mesh.attributes[".corner_vert"].data.foreach_set("value", faces.ravel())
        mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    mesh.update(calc_edges=True)
    return mesh


def push_undo_step(message: str) -> None:
    """One undo step for the whole import, where a window exists to own the undo stack."""
    windows = bpy.context.window_manager.windows
    if not windows:
        return
    with bpy.context.temp_override(window=windows[0]):
        bpy.ops.ed.undo_push(message=message)


def _view_layer_of(scene: bpy.types.Scene) -> bpy.types.ViewLayer:
    """The view layer a window shows `scene` with, else the scene's first."""
    for window in bpy.context.window_manager.windows:
        if window.scene == scene:
            return window.view_layer
    return scene.view_layers[0]


GEOMETRY_TYPES = {"MESH", "CURVE", "SURFACE", "META", "FONT", "CURVES", "POINTCLOUD", "VOLUME"}


def _occupied(scene: bpy.types.Scene, view_layer: bpy.types.ViewLayer) -> list[Box]:
    """World-space bounding boxes of the visible objects that have geometry."""
    boxes = []
    for obj in scene.objects:
        if obj.type in GEOMETRY_TYPES and obj.visible_get(view_layer=view_layer):
            matrix = np.array(obj.matrix_world)
            corners = np.array(obj.bound_box) @ matrix[:3, :3].T + matrix[:3, 3]
            low, high = corners.min(axis=0).tolist(), corners.max(axis=0).tolist()
            boxes.append((tuple(low), tuple(high)))
    return boxes


def _target_collection(
    scene: bpy.types.Scene, name: str, new_collection: bool
) -> bpy.types.Collection:
    if not new_collection:
        return scene.collection
    collection = bpy.data.collections.new(name)
    scene.collection.children.link(collection)
    return collection


def _make_root(
    name: str,
    collection: bpy.types.Collection,
    options: ImportOptions,
    location: Sequence[float],
    metadata: Mapping[str, Any],
) -> bpy.types.Object:
    root = bpy.data.objects.new(name, None)
    root.empty_display_type = "PLAIN_AXES"
    root.location = location
    root.scale = (options.size / 2,) * 3
    root[ROOT_KEY] = _idproperty_value(dict(metadata))
    collection.objects.link(root)
    return root


def _make_part_object(
    part: Part,
    result_name: str,
    root: bpy.types.Object,
    collection: bpy.types.Collection,
    options: ImportOptions,
) -> bpy.types.Object:
    name = f"{result_name}_{part.name}"
    vertices = gltf_to_blender(part.vertices)
    # The origin at the part's centre lets an artist rotate or scale a part in place.
    centre = (vertices.min(axis=0) + vertices.max(axis=0)) / 2 if len(vertices) else np.zeros(3)
    mesh = build_mesh(name, vertices - centre.astype(np.float32), part.faces)
    # A new mesh has no "sharp_face" attribute, which reads as smooth: set both ways.
    if options.shade_smooth:
        mesh.shade_smooth()
    else:
        mesh.shade_flat()
    mesh.materials.append(_part_material(name, part.color))
    obj = bpy.data.objects.new(name, mesh)
    obj.location = centre.tolist()
    obj.parent = root
    if part.volume is not None:
        obj[ROOT_KEY + "_volume"] = part.volume
    collection.objects.link(obj)
    return obj


def _part_material(name: str, srgb_color: Sequence[int]) -> bpy.types.Material:
    rgba = srgb_to_linear(srgb_color)
    material = bpy.data.materials.new(name)
    material.use_nodes = True
    material.diffuse_color = rgba
    shader = next(n for n in material.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    shader.inputs["Base Color"].default_value = (*rgba[:3], 1.0)
    shader.inputs["Alpha"].default_value = rgba[3]
    return material


def _idproperty_value(value: Any) -> Any:
    """JSON-like data as custom properties accept it: no None, dictionaries with string keys."""
    if isinstance(value, Mapping):
        return {str(k): _idproperty_value(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_idproperty_value(v) for v in value if v is not None]
    return value
