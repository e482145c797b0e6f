"""A part as arrays: its triangles in world space as the viewport shows them (modifiers,
explode offset and all), and its colour."""

from __future__ import annotations

import bpy
import numpy as np

from .file_writers import NamedMesh


def world_mesh(part: bpy.types.Object, depsgraph: bpy.types.Depsgraph) -> NamedMesh:
    evaluated = part.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    try:
        vertices = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
        mesh.attributes["position"].data.foreach_get("vector", vertices)
        faces = _triangles(mesh)
    finally:
        evaluated.to_mesh_clear()
    matrix = np.array(evaluated.matrix_world, dtype=np.float64)
    world = vertices.reshape(-1, 3) @ matrix[:3, :3].T + matrix[:3, 3]
    return NamedMesh(part.name, world.astype(np.float32), faces.reshape(-1, 3), part_color(part))


def _triangles(mesh: bpy.types.Mesh) -> np.ndarray:
    if len(mesh.loops) == 3 * len(mesh.polygons):  # triangles already, as generated: read fast
        faces = np.empty(len(mesh.loops), dtype=np.int32)
        mesh.attributes[".corner_vert"].data.foreach_get("value", faces)
        return faces
    mesh.calc_loop_triangles()
    faces = np.empty(len(mesh.loop_triangles) * 3, dtype=np.int32)
    mesh.loop_triangles.foreach_get("vertices", faces)
    return faces


def part_color(part: bpy.types.Object) -> tuple[float, float, float, float]:
    """The colour of the part's first material (linear RGBA), grey without one."""
    material = part.active_material if part.material_slots else None
    if material is None:
        return (0.8, 0.8, 0.8, 1.0)
    return tuple(float(c) for c in material.diffuse_color)
