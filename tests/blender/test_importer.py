"""The importer alone: synthetic parts.npz -> objects, checked against independent expectations."""

from __future__ import annotations

import json
import re

import bpy
import numpy as np
import pytest
from helpers import (
    GLTF_TO_BLENDER,
    parts_arrays,
    sample_parts,
    signed_volume,
    write_glb,
    write_npz,
)


@pytest.fixture
def importer(addon):
    return addon.importer


@pytest.fixture
def sample_npz(tmp_path):
    spheres, colors = sample_parts()
    return write_npz(tmp_path / "parts.npz", parts_arrays(spheres, colors)), spheres, colors


def world_vertices(obj: bpy.types.Object) -> np.ndarray:
    local = np.empty(len(obj.data.vertices) * 3, dtype=np.float64)
    obj.data.vertices.foreach_get("co", local)
    local = local.reshape(-1, 3)
    matrix = np.array(obj.matrix_world)
    return local @ matrix[:3, :3].T + matrix[:3, 3]


def scene_counts() -> tuple[int, ...]:
    data = bpy.data
    return (len(data.objects), len(data.meshes), len(data.materials), len(data.collections))


def test_one_object_per_part_under_an_empty_in_a_new_collection(importer, sample_npz):
    path, spheres, _ = sample_npz
    options = importer.ImportOptions(size=4.0, location=(1.0, 2.0, 3.0))
    result = importer.import_parts(path, bpy.context.scene, stem="robot", seed=42, options=options)

    assert [o.name for o in result.parts] == [
        "robot_42_part_000",
        "robot_42_part_001",
        "robot_42_part_002",
    ]
    assert result.collection.name == "robot_42"
    assert result.collection.name in bpy.context.scene.collection.children
    assert set(result.collection.objects) == {result.root, *result.parts}
    assert result.root.type == "EMPTY"
    assert tuple(result.root.location) == (1.0, 2.0, 3.0)
    assert tuple(result.root.scale) == pytest.approx((2.0, 2.0, 2.0))
    for obj, (vertices, faces) in zip(result.parts, spheres, strict=True):
        assert obj.parent == result.root
        assert len(obj.data.vertices) == len(vertices)
        assert len(obj.data.polygons) == len(faces)
        assert all(len(p.vertices) == 3 for p in obj.data.polygons)
        assert obj.data.validate() is False, "the mesh needed repairs"


def test_vertices_land_where_an_independent_transform_puts_them(importer, sample_npz):
    path, spheres, _ = sample_npz
    options = importer.ImportOptions(size=3.0, location=(0.5, -1.0, 2.0))
    result = importer.import_parts(path, bpy.context.scene, stem="s", seed=1, options=options)
    bpy.context.view_layer.update()
    for obj, (vertices, _) in zip(result.parts, spheres, strict=True):
        expected = vertices @ GLTF_TO_BLENDER.T * 1.5 + np.array([0.5, -1.0, 2.0])
        np.testing.assert_allclose(world_vertices(obj), expected, atol=1e-5)


def test_normals_point_outward_and_shading_is_smooth(importer, sample_npz):
    path, _, _ = sample_npz
    result = importer.import_parts(path, bpy.context.scene, stem="s", seed=1)
    for obj in result.parts:
        mesh = obj.data
        normals = np.empty(len(mesh.polygons) * 3)
        centres = np.empty(len(mesh.polygons) * 3)
        mesh.polygons.foreach_get("normal", normals)
        mesh.polygons.foreach_get("center", centres)
        vertices = np.array([v.co for v in mesh.vertices])
        outward = centres.reshape(-1, 3) - vertices.mean(axis=0)
        assert (np.einsum("ij,ij->i", normals.reshape(-1, 3), outward) > 0).all()
        assert all(p.use_smooth for p in mesh.polygons)


def test_flat_shading_and_no_new_collection(importer, sample_npz):
    path, _, _ = sample_npz
    options = importer.ImportOptions(shade_smooth=False, new_collection=False)
    result = importer.import_parts(path, bpy.context.scene, stem="s", seed=1, options=options)
    assert result.collection is None
    assert len(bpy.data.collections) == 0
    assert result.root.name in bpy.context.scene.collection.objects
    assert not any(p.use_smooth for obj in result.parts for p in obj.data.polygons)


def test_each_part_has_its_own_material_in_linear_colour(importer, sample_npz):
    path, _, _ = sample_npz
    result = importer.import_parts(path, bpy.context.scene, stem="s", seed=1)
    materials = [obj.material_slots[0].material for obj in result.parts]
    assert len({m.name for m in materials}) == 3
    # sRGB 255 -> 1.0, 128 -> 0.2158605 (the sRGB curve), 0 -> 0.0
    assert tuple(materials[0].diffuse_color) == pytest.approx((1.0, 0.2158605, 0.0, 1.0), abs=1e-6)
    shader = materials[0].node_tree.nodes["Principled BSDF"]
    base = tuple(shader.inputs["Base Color"].default_value)
    assert base == pytest.approx((1.0, 0.2158605, 0.0, 1.0), abs=1e-6)
    # sRGB 64 -> 0.0512695
    assert materials[1].diffuse_color[1] == pytest.approx(0.0512695, abs=1e-6)


def test_same_geometry_as_blenders_gltf_importer(importer, sample_npz, tmp_path):
    path, spheres, colors = sample_npz
    glb = write_glb(tmp_path / "parts.glb", spheres, colors)
    ours = importer.import_parts(path, bpy.context.scene, stem="ours", seed=1)
    bpy.ops.import_scene.gltf(filepath=str(glb))
    theirs = sorted(
        (o for o in bpy.context.scene.objects if o.name.startswith("part_")), key=lambda o: o.name
    )
    bpy.context.view_layer.update()
    assert len(theirs) == len(ours.parts)
    for mine, gltf in zip(ours.parts, theirs, strict=True):
        mine_world = np.round(world_vertices(mine), 5)
        gltf_world = np.round(world_vertices(gltf), 5)
        assert sorted(map(tuple, mine_world)) == sorted(map(tuple, gltf_world))
        faces = np.array([p.vertices[:] for p in gltf.data.polygons])
        mine_faces = np.array([p.vertices[:] for p in mine.data.polygons])
        assert signed_volume(world_vertices(gltf), faces) == pytest.approx(
            signed_volume(world_vertices(mine), mine_faces), rel=1e-4
        )


def test_metadata_is_stored_on_the_empty(importer, sample_npz):
    path, _, _ = sample_npz
    metadata = {"image": "/x/robot.png", "seed": 7, "params": {"steps": 30}, "backend": None}
    result = importer.import_parts(path, bpy.context.scene, stem="r", seed=7, metadata=metadata)
    stored = result.root["partpacker"].to_dict()
    assert stored == {"image": "/x/robot.png", "seed": 7, "params": {"steps": 30}}
    assert json.loads(json.dumps(stored)) == stored


def test_import_is_one_undo_step(importer, sample_npz):
    path, _, _ = sample_npz
    bpy.ops.ed.undo_push(message="before")
    before = scene_counts()
    importer.import_parts(path, bpy.context.scene, stem="u", seed=1)
    assert scene_counts() != before
    bpy.ops.ed.undo()
    assert scene_counts() == before
    assert "u_1_part_000" not in bpy.data.objects


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a["faces"].__setitem__((50, 1), 42), "outside the part's 42 vertices"),
        (lambda a: a["faces"].__setitem__((3, 0), -1), "refers to a vertex outside"),
        (lambda a: a.__setitem__("faces", a["faces"].astype(np.int64)), "faces is int64"),
        (lambda a: a.__setitem__("vertices", a["vertices"].astype(np.float64)), "float64"),
        (lambda a: a.__setitem__("colors", a["colors"][:2]), "colors has shape [2, 4]"),
        (lambda a: a["face_offsets"].__setitem__(1, 500), "face_offsets must rise"),
        (lambda a: a.pop("names"), "lacks the array(s) names"),
        (lambda a: a["vertices"].__setitem__((0, 0), np.nan), "NaN"),
    ],
)
def test_bad_arrays_give_a_clear_error_and_leave_the_scene_untouched(
    addon, importer, tmp_path, change, message
):
    arrays = parts_arrays(*sample_parts())
    change(arrays)
    path = write_npz(tmp_path / "bad.npz", arrays)
    before = scene_counts()
    with pytest.raises(addon.parts_file.PartsFileError, match=re.escape(message)):
        importer.import_parts(path, bpy.context.scene, stem="bad", seed=1)
    assert scene_counts() == before


def test_a_file_that_is_not_an_npz_is_refused(importer, tmp_path):
    path = tmp_path / "parts.npz"
    path.write_text("not a zip")
    with pytest.raises(ValueError, match="not a readable parts\\.npz"):
        importer.import_parts(path, bpy.context.scene, stem="bad", seed=1)
    assert len(bpy.data.objects) == 0


def write_job_folder(folder, seed: int = 9):
    folder.mkdir()
    write_npz(folder / "parts.npz", parts_arrays(*sample_parts()))
    record = {
        "image": "/photos/teapot.png",
        "seed": seed,
        "params": {"steps": 20, "grid_res": 256},
        "timings": {"sample": 1.0},
        "versions": {"backend": "0.1.0"},
        "device": {"device_name": "NVIDIA H100"},
    }
    (folder / "result.json").write_text(json.dumps(record))
    return folder


def test_import_job_folder_operator_names_the_result_after_image_and_seed(addon, tmp_path):
    folder = write_job_folder(tmp_path / "job")
    bpy.context.scene.cursor.location = (0.0, 0.0, 4.0)
    assert bpy.ops.partpacker.import_folder(directory=str(folder)) == {"FINISHED"}
    root = bpy.data.objects["teapot_9"]
    assert tuple(root.location) == (0.0, 0.0, 4.0)
    assert sorted(child.name for child in root.children) == [
        "teapot_9_part_000",
        "teapot_9_part_001",
        "teapot_9_part_002",
    ]
    metadata = root["partpacker"].to_dict()
    assert metadata["params"] == {"steps": 20, "grid_res": 256}
    assert metadata["backend_version"] == "0.1.0"
    assert metadata["device"] == "NVIDIA H100"
    assert metadata["job_folder"] == str(folder)


def test_api_import_job_folder_returns_the_parts(addon, tmp_path):
    folder = write_job_folder(tmp_path / "job", seed=3)
    parts = addon.api.import_job_folder(folder)
    assert [p.name for p in parts] == [
        "teapot_3_part_000",
        "teapot_3_part_001",
        "teapot_3_part_002",
    ]
    assert "teapot_3" in bpy.data.collections


def test_a_folder_without_parts_is_refused(addon, tmp_path):
    with pytest.raises(RuntimeError, match="not a PartPacker job folder"):
        bpy.ops.partpacker.import_folder(directory=str(tmp_path))
    assert len(bpy.data.objects) == 0
