"""Export of a result's parts, read back by trimesh in the backend's Python (not by the code that
wrote them): the right files, parts, face counts and places."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import bpy
import numpy as np
import pytest
from helpers import parts_arrays, sample_parts, write_npz

READER = Path(__file__).parent / "trimesh_reader.py"
NAMES = ["robot_part_000", "robot_part_001", "robot_part_002"]


@pytest.fixture
def result(addon, tmp_path):
    spheres, colors = sample_parts()
    npz = write_npz(tmp_path / "parts.npz", parts_arrays(spheres, colors))
    options = addon.importer.ImportOptions(size=4.0, location=(1.0, 2.0, 3.0))
    return addon.importer.import_parts(npz, bpy.context.scene, stem="robot", options=options)


def read_with_trimesh(backend_python: Path, paths: list[Path]) -> dict[str, list[dict]]:
    completed = subprocess.run(
        [str(backend_python), str(READER), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(completed.stdout)


def face_counts() -> list[int]:
    spheres, _ = sample_parts()
    return [len(faces) for _, faces in spheres]


def world_bounds(part: bpy.types.Object, y_up: bool) -> np.ndarray:
    """The part's world bounding box from its vertices, turned Y up for OBJ and glTF."""
    local = np.array([v.co for v in part.data.vertices])
    matrix = np.array(part.matrix_world)
    world = local @ matrix[:3, :3].T + matrix[:3, 3]
    if y_up:
        world = np.stack([world[:, 0], world[:, 2], -world[:, 1]], axis=1)
    return np.array([world.min(axis=0), world.max(axis=0)])


@pytest.mark.parametrize("file_format", ["STL", "OBJ", "GLB"])
def test_one_file_per_part_with_its_faces_where_the_part_is(
    addon, result, tmp_path, backend_python, file_format
):
    addon.api.explode(result.root, 0.5)
    paths = addon.api.export_parts(result.root, tmp_path / "out", format=file_format)

    suffix = "." + file_format.lower()
    assert [p.name for p in paths] == [name + suffix for name in NAMES]
    read = read_with_trimesh(backend_python, paths)
    bpy.context.view_layer.update()
    for path, part, faces in zip(paths, result.parts, face_counts(), strict=True):
        (mesh,) = read[str(path)]
        assert mesh["faces"] == faces
        expected = world_bounds(part, y_up=file_format != "STL")
        np.testing.assert_allclose(mesh["bounds"], expected, atol=1e-4)


def test_one_glb_with_a_node_per_part(addon, result, tmp_path, backend_python):
    (path,) = addon.api.export_parts(result.root, tmp_path, format="GLB_SCENE")
    assert path == tmp_path / "robot.glb"
    meshes = read_with_trimesh(backend_python, [path])[str(path)]
    assert [m["name"] for m in meshes] == NAMES
    assert [m["faces"] for m in meshes] == face_counts()
    for mesh, part in zip(meshes, result.parts, strict=True):
        np.testing.assert_allclose(mesh["bounds"], world_bounds(part, y_up=True), atol=1e-4)


def test_names_that_are_not_file_names_are_made_safe_and_distinct(addon, result, tmp_path):
    result.parts[0].name = "arm/left"
    result.parts[1].name = "arm:left"
    paths = addon.api.export_parts(result.root, tmp_path, format="STL")
    assert sorted(p.name for p in paths) == ["arm_left.stl", "arm_left_2.stl", NAMES[2] + ".stl"]
    assert all(p.is_file() for p in paths)


def test_export_is_refused_clearly(addon, result, tmp_path):
    with pytest.raises(ValueError, match="unknown format 'FBX'"):
        addon.api.export_parts(result.root, tmp_path, format="FBX")
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(addon.parts.export.ExportError, match="cannot be written"):
        addon.api.export_parts(result.root, blocker, format="STL")
    empty = bpy.data.objects.new("empty_result", None)
    with pytest.raises(addon.parts.export.ExportError, match="no parts"):
        addon.api.export_parts(empty, tmp_path, format="STL")


def test_the_panel_button_exports_the_selected_result(result, tmp_path):
    bpy.context.view_layer.objects.active = result.parts[2]
    folder = tmp_path / "export"
    outcome = bpy.ops.partpacker.export_parts(directory=str(folder), file_format="OBJ")
    assert outcome == {"FINISHED"}
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"{name}.obj" for name in NAMES] + [f"{name}.mtl" for name in NAMES]
    )


def test_a_part_with_quads_is_written_as_triangles(addon, result, tmp_path, backend_python):
    bpy.ops.mesh.primitive_cube_add(size=0.5)
    cube = bpy.context.active_object
    cube.name, cube.parent = "robot_part_cube", result.root
    paths = addon.api.export_parts(result.root, tmp_path, format="STL")
    read = read_with_trimesh(backend_python, paths)
    (mesh,) = read[str(tmp_path / "robot_part_cube.stl")]
    assert mesh["faces"] == 12
    np.testing.assert_allclose(mesh["bounds"], world_bounds(cube, y_up=False), atol=1e-5)
