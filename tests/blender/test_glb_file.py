"""The add-on's GLB reader on GLBs written by others (glb_samples.py, with the backend's trimesh):
our server's parts.glb, the public Space's layout (tests/space_standin.py) and nodes with
transforms; what trimesh reads back, and the colours the parts were written with, are the
expectation. Then a Space GLB through the importer: one object per part with its colour."""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import bpy
import numpy as np
import pytest
from helpers import GLTF_TO_BLENDER

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def samples(backend_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("glb_samples")
    subprocess.run(
        [str(backend_python), str(HERE / "glb_samples.py"), str(folder)],
        check=True,
        capture_output=True,
    )
    return folder


def gltf_of(path: Path) -> dict:
    length = struct.unpack_from("<I", path.read_bytes(), 12)[0]
    return json.loads(path.read_bytes()[20 : 20 + length])


@pytest.mark.parametrize("name", ["ours", "space", "moved"])
def test_parts_are_the_nodes_with_their_world_triangles_and_colours(addon, samples, name):
    expected = json.loads((samples / "expected.json").read_text())[name]
    parts = addon.glb_file.read_glb(samples / f"{name}.glb")
    assert sorted(part.name for part in parts) == sorted(expected["triangles"])
    for part in parts:
        corners = part.vertices[part.faces]
        np.testing.assert_allclose(corners, expected["triangles"][part.name], atol=1e-5)
        assert part.color == tuple(expected["colors"][part.name])
        assert part.volume is None


def test_the_samples_hold_what_the_reader_must_handle(samples):
    """A material colour, COLOR_0 without material, a matrix, TRS and a child node."""
    ours, space, moved = (gltf_of(samples / f"{n}.glb") for n in ("ours", "space", "moved"))
    assert ours["materials"] and all("COLOR_0" not in p["attributes"] for p in primitives(ours))
    assert "materials" not in space and all("COLOR_0" in p["attributes"] for p in primitives(space))
    nodes = {node.get("name"): node for node in moved["nodes"]}
    assert "matrix" in nodes["matrix"] and "rotation" in nodes["trs"]
    assert moved["nodes"].index(nodes["child"]) in nodes["matrix"]["children"]


def primitives(gltf: dict) -> list[dict]:
    return [primitive for mesh in gltf["meshes"] for primitive in mesh["primitives"]]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"glTF" + b"\0" * 30, "has no glTF description"),
        (b"PK\3\4 a zip file, not a GLB", "is not a GLB file"),
    ],
)
def test_a_file_that_is_not_a_glb_is_refused(addon, tmp_path, content, message):
    path = tmp_path / "parts.glb"
    path.write_bytes(content)
    with pytest.raises(addon.parts_file.PartsFileError, match=message):
        addon.glb_file.read_glb(path)


def test_a_glb_that_needs_an_extension_is_refused_by_name(addon, tmp_path):
    gltf = json.dumps(
        {"asset": {"version": "2.0"}, "extensionsRequired": ["KHR_draco_mesh_compression"]}
    )
    text = gltf.encode() + b" " * (-len(gltf) % 4)
    path = tmp_path / "draco.glb"
    path.write_bytes(
        struct.pack("<III", 0x46546C67, 2, 20 + len(text))
        + struct.pack("<II", len(text), 0x4E4F534A)
        + text
    )
    with pytest.raises(addon.parts_file.PartsFileError, match="KHR_draco_mesh_compression"):
        addon.glb_file.read_glb(path)


def test_face_indices_beyond_the_vertices_are_refused(addon, samples, tmp_path):
    data = bytearray((samples / "space.glb").read_bytes())
    gltf = gltf_of(samples / "space.glb")
    accessor = gltf["accessors"][gltf["meshes"][0]["primitives"][0]["indices"]]
    view = gltf["bufferViews"][accessor["bufferView"]]
    json_length = struct.unpack_from("<I", data, 12)[0]
    first_index = 20 + json_length + 8 + view.get("byteOffset", 0) + accessor.get("byteOffset", 0)
    struct.pack_into("<I", data, first_index, 999)  # trimesh writes uint32 indices
    bad = tmp_path / "bad.glb"
    bad.write_bytes(bytes(data))
    with pytest.raises(addon.parts_file.PartsFileError, match="outside its 8 vertices"):
        addon.glb_file.read_glb(bad)


def test_a_space_glb_imports_as_one_coloured_object_per_part(addon, samples):
    expected = json.loads((samples / "expected.json").read_text())["space"]
    result = addon.importer.import_parts(samples / "space.glb", bpy.context.scene, stem="table")
    assert sorted(obj.name for obj in result.parts) == [f"table_geometry_{i}" for i in range(5)]
    for obj in result.parts:
        assert obj.parent is result.root
        srgb = expected["colors"][obj.name.removeprefix("table_")]
        linear = addon.importer.srgb_to_linear(srgb)
        np.testing.assert_allclose(obj.active_material.diffuse_color, linear, atol=1e-6)
        corners = np.array(expected["triangles"][obj.name.removeprefix("table_")]).reshape(-1, 3)
        bpy.context.view_layer.update()
        world = np.array(obj.matrix_world)
        local = np.array([v.co for v in obj.data.vertices])
        placed = local @ world[:3, :3].T + world[:3, 3]
        wanted = corners @ GLTF_TO_BLENDER.T  # the root's scale is 1 at the default size 2
        np.testing.assert_allclose(placed.min(0), wanted.min(0), atol=1e-5)
        np.testing.assert_allclose(placed.max(0), wanted.max(0), atol=1e-5)
    top = bpy.data.objects["table_geometry_0"]
    assert all(top.location.z > leg.location.z for leg in result.parts if leg is not top)
