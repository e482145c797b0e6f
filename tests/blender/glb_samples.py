"""GLBs written by others, for the add-on's GLB reader; run with the backend's Python (trimesh):

    python glb_samples.py FOLDER

writes ours.glb (backend/export.py's write_glb, as our server returns it), space.glb (the layout
of the public Space's, by tests/space_standin.py) and moved.glb (trimesh nodes with transforms:
a matrix, a translation-rotation-scale, a child of a moved parent), and expected.json: for each
file and part (by node name) the triangles' corners in world space as trimesh reads the file
back, and the colour the part was written with (sRGB bytes).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import trimesh
from trimesh import transformations

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from space_standin import space_glb, table_parts  # noqa: E402

from backend.export import write_glb  # noqa: E402
from backend.parts import PALETTE, Part  # noqa: E402

MOVED_COLOR = (200, 30, 90, 255)


def ours(path: Path) -> dict[str, list[int]]:
    colors = {}
    parts = []
    for index, (centre, size) in enumerate(table_parts()[:3]):
        box = trimesh.creation.box(extents=size)
        color = PALETTE[index * 3]
        name = f"part_{index:03d}"
        vertices = np.asarray(box.vertices) + centre
        parts.append(Part(name, index % 2, vertices, np.asarray(box.faces), color))
        colors[name] = list(color)
    write_glb(parts, path)
    return colors


def space(path: Path) -> dict[str, list[int]]:
    space_glb(path)
    return {f"geometry_{i}": list(PALETTE[i]) for i in range(len(table_parts()))}


def moved(path: Path) -> dict[str, list[int]]:
    """Three nodes: a matrix, a TRS (written over trimesh's matrix) and a child of the first."""
    scene = trimesh.Scene()
    turn = transformations.rotation_matrix(0.7, [0.3, 1.0, 0.2])
    turn[:3, 3] = (0.5, -0.25, 2.0)
    for name, parent, transform in (
        ("matrix", None, turn),
        ("trs", None, transformations.compose_matrix(scale=[2, 1, 0.5], angles=[0.4, 0, 1.1])),
        ("child", "matrix", transformations.translation_matrix([0, 1.5, 0])),
    ):
        mesh = trimesh.creation.icosphere(subdivisions=1)
        mesh.visual = trimesh.visual.ColorVisuals(
            mesh, vertex_colors=np.tile(MOVED_COLOR, (len(mesh.vertices), 1))
        )
        scene.add_geometry(
            mesh, geom_name=name, node_name=name, parent_node_name=parent, transform=transform
        )

    def as_trs(tree: dict) -> None:
        for node in tree["nodes"]:
            if node.get("name") == "trs":
                matrix = np.asarray(node.pop("matrix")).reshape(4, 4).T
                scale, _shear, _angles, translation, _ = transformations.decompose_matrix(matrix)
                w, x, y, z = transformations.quaternion_from_matrix(matrix[:3, :3] / scale)
                node.update(translation=list(translation), rotation=[x, y, z, w])
                node["scale"] = list(scale)

    path.write_bytes(trimesh.exchange.gltf.export_glb(scene, tree_postprocessor=as_trs))
    return {name: list(MOVED_COLOR) for name in ("matrix", "trs", "child")}


def world_triangles(path: Path) -> dict[str, list]:
    scene = trimesh.load(path, force="scene", process=False)
    triangles = {}
    for node in scene.graph.nodes_geometry:
        transform, geometry = scene.graph[node]
        mesh = scene.geometry[geometry]
        corners = trimesh.transform_points(mesh.vertices, transform)[mesh.faces]
        triangles[node] = corners.tolist()
    return triangles


def main(folder: Path) -> None:
    expected = {}
    for name, write in (("ours", ours), ("space", space), ("moved", moved)):
        path = folder / f"{name}.glb"
        colors = write(path)
        expected[name] = {"colors": colors, "triangles": world_triangles(path)}
    (folder / "expected.json").write_text(json.dumps(expected))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
