"""parts.glb and parts.npz: the demo's Y-up frame, colours, the PROTOCOL.md npz layout, atomic
writes and clear errors; the palette and the stable part order."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import trimesh
from reference import TINY
from safetensors.numpy import load_file

from backend.errors import BadInputError, OutputError
from backend.export import read_npz, write_glb, write_npz
from backend.meshing import extract_mesh
from backend.parts import PALETTE, Part, assemble_parts

MESH = TINY / "mesh"
FIXTURE = load_file(MESH / "mcubes_analytic.safetensors")
GLB_MATRIX = np.array(json.loads((MESH / "mcubes_analytic.json").read_text())["glb_matrix_M"])
HIER_GRID = load_file(MESH.parent / "vae" / "hier_analytic_r32.safetensors")["grid"]


def tetrahedron(offset: float, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32) * scale + offset
    faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], np.int32)
    return vertices, faces


def sample_parts(count: int = 3) -> list[Part]:
    per_volume: list[list[Part]] = [[], []]
    for index in range(count):
        vertices, faces = tetrahedron(0.3 * index - 0.5, 0.2 + 0.01 * index)
        faces = np.concatenate([faces] * (index + 1))  # distinct sizes: a known order
        per_volume[index % 2].append(Part(f"piece{index}", index % 2, vertices, faces))
    return assemble_parts(per_volume)


def sorted_rows(vertices: np.ndarray) -> np.ndarray:
    return vertices[np.lexsort(vertices.T[::-1])]


def glb_json(path: Path) -> dict:
    data = path.read_bytes()
    magic, version, _ = struct.unpack_from("<4sII", data)
    assert (magic, version) == (b"glTF", 2)
    length, kind = struct.unpack_from("<I4s", data, 12)
    assert kind == b"JSON"
    return json.loads(data[20 : 20 + length])


def srgb_byte(linear: float) -> float:
    srgb = linear * 12.92 if linear <= 0.0031308 else 1.055 * linear ** (1 / 2.4) - 0.055
    return srgb * 255


def test_the_glb_is_y_up_as_the_demos(tmp_path: Path) -> None:
    vertices, faces = extract_mesh(HIER_GRID)
    path = write_glb([Part("part_000", 0, vertices, faces)], tmp_path / "parts.glb")
    scene = trimesh.load(path, process=False)
    loaded = np.asarray(scene.geometry["part_000"].vertices, np.float32)
    expected = FIXTURE["hier_trimesh_vertices_glb"].astype(np.float32)  # parts hold float32
    assert loaded.shape == expected.shape
    np.testing.assert_array_equal(sorted_rows(loaded), sorted_rows(expected))


def test_glb_has_one_named_mesh_per_part_with_the_npz_positions(tmp_path: Path) -> None:
    parts = sample_parts(5)
    write_glb(parts, tmp_path / "parts.glb")
    write_npz(parts, tmp_path / "parts.npz")
    scene = trimesh.load(tmp_path / "parts.glb", process=False)
    npz = np.load(tmp_path / "parts.npz")
    assert sorted(scene.geometry) == [f"part_{index:03d}" for index in range(5)]
    for index, part in enumerate(parts):
        mesh = scene.geometry[part.name]
        rows = slice(npz["vertex_offsets"][index], npz["vertex_offsets"][index + 1])
        face_rows = slice(npz["face_offsets"][index], npz["face_offsets"][index + 1])
        np.testing.assert_array_equal(mesh.vertices, npz["vertices"][rows])
        np.testing.assert_array_equal(mesh.faces, npz["faces"][face_rows])


def test_glb_materials_show_the_palette_colour(tmp_path: Path) -> None:
    parts = sample_parts(3)
    tree = glb_json(write_glb(parts, tmp_path / "parts.glb"))
    materials = {material["name"]: material for material in tree["materials"]}
    for part in parts:
        pbr = materials[part.name]["pbrMetallicRoughness"]
        red, green, blue, alpha = pbr["baseColorFactor"]
        shown = [srgb_byte(red), srgb_byte(green), srgb_byte(blue), alpha * 255]
        np.testing.assert_allclose(shown, part.color, atol=1e-6)
        assert pbr["metallicFactor"] == 0
    mesh_material = {
        mesh["name"]: tree["materials"][mesh["primitives"][0]["material"]]["name"]
        for mesh in tree["meshes"]
    }
    assert mesh_material == {part.name: part.name for part in parts}


def test_npz_has_the_protocol_layout(tmp_path: Path) -> None:
    parts = sample_parts(3)
    with np.load(write_npz(parts, tmp_path / "parts.npz")) as npz:
        arrays = dict(npz)
    assert arrays["vertices"].dtype == np.float32 and arrays["faces"].dtype == np.int32
    assert arrays["vertex_offsets"].dtype == arrays["face_offsets"].dtype == np.int64
    assert arrays["colors"].dtype == np.uint8 and arrays["colors"].shape == (3, 4)
    assert arrays["volumes"].dtype == np.int32 and arrays["volumes"].tolist() == [0, 0, 1]
    assert arrays["names"].tolist() == ["part_000", "part_001", "part_002"]
    np.testing.assert_array_equal(arrays["vertex_offsets"], [0, 4, 8, 12])
    np.testing.assert_array_equal(arrays["face_offsets"], np.cumsum([0, 12, 4, 8]))
    model = np.concatenate([part.vertices for part in parts])
    np.testing.assert_array_equal(arrays["vertices"], model @ GLB_MATRIX.T)
    np.testing.assert_array_equal(arrays["faces"][:12], np.concatenate([tetrahedron(0)[1]] * 3))


def test_npz_round_trip(tmp_path: Path) -> None:
    parts = sample_parts(4)
    loaded = read_npz(write_npz(parts, tmp_path / "parts.npz"))
    assert len(loaded) == len(parts)
    for before, after in zip(parts, loaded, strict=True):
        assert (after.name, after.volume, after.color) == (before.name, before.volume, before.color)
        np.testing.assert_array_equal(after.vertices, before.vertices)
        np.testing.assert_array_equal(after.faces, before.faces)


def test_no_parts_still_make_valid_files(tmp_path: Path) -> None:
    assert read_npz(write_npz([], tmp_path / "parts.npz")) == []
    assert glb_json(write_glb([], tmp_path / "parts.glb"))["asset"]["version"] == "2.0"


@pytest.mark.parametrize("writer", [write_glb, write_npz])
def test_an_unwritable_folder_is_an_output_error(tmp_path: Path, writer) -> None:
    with pytest.raises(OutputError, match="cannot write"):
        writer(sample_parts(1), tmp_path / "missing" / "parts.out")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match="cannot write") as error:
        writer(sample_parts(1), blocker / "parts.out")
    assert error.value.code == "output"


@pytest.mark.parametrize("writer", [write_glb, write_npz])
def test_writes_replace_the_file_and_leave_no_temporary(tmp_path: Path, writer) -> None:
    target = tmp_path / "parts.out"
    target.write_bytes(b"old")
    writer(sample_parts(2), target)
    assert target.read_bytes() != b"old"
    assert [path.name for path in tmp_path.iterdir()] == ["parts.out"]


def test_a_broken_npz_is_a_clear_error(tmp_path: Path) -> None:
    np.savez(tmp_path / "other.npz", vertices=np.zeros((1, 3)))
    with pytest.raises(BadInputError, match=r"not a parts\.npz: no faces"):
        read_npz(tmp_path / "other.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(BadInputError, match="cannot read the parts file"):
        read_npz(tmp_path / "text.npz")


def test_the_palette_is_set3_then_set2_then_set1() -> None:
    assert len(PALETTE) == 29 and len(set(PALETTE)) == 29
    # first and last colours of ColorBrewer's Set3, Set2 and Set1
    assert PALETTE[0] == (0x8D, 0xD3, 0xC7, 255) and PALETTE[11] == (0xFF, 0xED, 0x6F, 255)
    assert PALETTE[12] == (0x66, 0xC2, 0xA5, 255) and PALETTE[19] == (0xB3, 0xB3, 0xB3, 255)
    assert PALETTE[20] == (0xE4, 0x1A, 0x1C, 255) and PALETTE[28] == (0x99, 0x99, 0x99, 255)


def test_parts_are_ordered_by_volume_then_size_named_and_coloured_cycling() -> None:
    def piece(volume: int, face_count: int) -> Part:
        vertices, faces = tetrahedron(0)
        return Part(f"v{volume}f{face_count}", volume, vertices, np.resize(faces, (face_count, 3)))

    volume0 = [piece(0, size) for size in (5, 40, 12, 7, 30, 9, 8, 20, 11, 6, 10, 13, 14, 15, 16)]
    volume1 = [piece(1, size) for size in (3, 50, 4, *range(17, 30))]
    parts = assemble_parts([volume0, volume1])
    assert len(parts) == 31
    assert [part.name for part in parts] == [f"part_{index:03d}" for index in range(31)]
    sizes = [(part.volume, len(part.faces)) for part in parts]
    assert sizes == sorted(sizes, key=lambda size: (size[0], -size[1]))
    assert sizes[0] == (0, 40) and sizes[15] == (1, 50)
    assert [part.color for part in parts] == [PALETTE[index % 29] for index in range(31)]
    assert parts[29].color == PALETTE[0] and parts[30].color == PALETTE[1]
