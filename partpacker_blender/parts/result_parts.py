"""The part objects of a result: the mesh children of its Empty, in name order."""

from __future__ import annotations

import bpy
from mathutils import Vector


def parts_of(root: bpy.types.Object) -> list[bpy.types.Object]:
    return sorted((o for o in root.children if o.type == "MESH"), key=lambda o: o.name)


def rest_centre(part: bpy.types.Object) -> Vector:
    """The centre of the part's bounding box in its parent's space, without any explode offset
    (delta_location), so it is the same however far the result is exploded."""
    corners = [Vector(corner) for corner in part.bound_box]
    local = sum(corners, Vector()) / len(corners)
    basis = part.matrix_basis.copy()
    basis.translation -= part.delta_location
    return part.matrix_parent_inverse @ basis @ local
