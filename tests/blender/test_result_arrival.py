"""How a result arrives: names of its own, selected with its Empty active, beside what already
stands at its spot."""

from __future__ import annotations

import re

import bpy
import pytest
from helpers import parts_arrays, sample_parts, write_npz


@pytest.fixture
def importer(addon):
    return addon.importer


@pytest.fixture
def sample_npz(tmp_path):
    spheres, colors = sample_parts()
    return write_npz(tmp_path / "parts.npz", parts_arrays(spheres, colors)), spheres, colors


def test_results_of_the_same_image_and_seed_get_names_of_their_own(importer, sample_npz):
    path, _, _ = sample_npz
    first = importer.import_parts(path, bpy.context.scene, stem="robot", seed=7)
    second = importer.import_parts(path, bpy.context.scene, stem="robot", seed=7)
    third = importer.import_parts(path, bpy.context.scene, stem="robot", seed=7)
    assert [r.root.name for r in (first, second, third)] == ["robot_7", "robot_7-2", "robot_7-3"]
    assert second.collection.name == "robot_7-2"
    assert second.parts[0].name == "robot_7-2_part_000"
    names = [
        *(o.name for o in bpy.data.objects),
        *(m.name for m in bpy.data.meshes),
        *(m.name for m in bpy.data.materials),
        *(c.name for c in bpy.data.collections),
    ]
    assert not [name for name in names if re.search(r"\.\d{3}$", name)], names
    materials = {o.material_slots[0].material.name for r in (first, second) for o in r.parts}
    assert len(materials) == 6


def test_a_name_taken_by_something_else_is_not_reused(importer, sample_npz):
    path, _, _ = sample_npz
    bpy.data.materials.new("robot_part_001")  # what an older import left
    bpy.data.objects.new("robot_2", None)
    # A part's material would be robot_part_001: taken.
    assert importer.import_parts(path, bpy.context.scene, stem="robot").root.name == "robot-2"
    assert importer.import_parts(path, bpy.context.scene, stem="robot").root.name == "robot-3"
    result = importer.import_parts(path, bpy.context.scene, stem="robot", seed=2)
    assert result.root.name == "robot_2-2"


def test_the_new_result_alone_is_selected_and_its_empty_active(importer, sample_npz):
    path, _, _ = sample_npz
    first = importer.import_parts(path, bpy.context.scene, stem="a", seed=1)
    second = importer.import_parts(path, bpy.context.scene, stem="b", seed=1)
    layer = bpy.context.view_layer
    assert layer.objects.active == second.root
    assert set(bpy.context.selected_objects) == {second.root, *second.parts}
    assert not any(o.select_get() for o in (first.root, *first.parts))


def test_a_result_is_placed_beside_what_stands_at_its_spot(importer, sample_npz):
    path, _, _ = sample_npz
    bpy.ops.mesh.primitive_cube_add(size=2.0, location=(0.0, 0.0, 0.0))  # the default cube
    result = importer.import_parts(path, bpy.context.scene, stem="a", seed=1)
    x, y, z = result.root.location
    assert (y, z) == (0.0, 0.0)
    assert x >= 2.0, "its [-1, 1] box clears the cube's"
    again = importer.import_parts(path, bpy.context.scene, stem="a", seed=1)
    assert again.root.location.x >= x + 2.0, "and the first result"
    away = importer.ImportOptions(location=(0.0, 5.0, 0.0))
    assert tuple(
        importer.import_parts(path, bpy.context.scene, stem="c", options=away).root.location
    ) == (0.0, 5.0, 0.0)
    stay = importer.ImportOptions(beside_others=False)
    inside = importer.import_parts(path, bpy.context.scene, stem="d", options=stay)
    assert tuple(inside.root.location) == (0.0, 0.0, 0.0)


def test_hidden_objects_and_empties_do_not_push_a_result_aside(importer, sample_npz):
    path, _, _ = sample_npz
    bpy.ops.mesh.primitive_cube_add(size=2.0)
    bpy.context.active_object.hide_set(True)
    bpy.ops.object.empty_add(location=(0.0, 0.0, 0.0))
    result = importer.import_parts(path, bpy.context.scene, stem="a", seed=1)
    assert tuple(result.root.location) == (0.0, 0.0, 0.0)


def test_free_spot_moves_along_x_past_every_box_in_the_way(addon):
    placement = addon.placement
    cube = ((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0))
    beside = ((2.0, -1.0, -1.0), (4.0, 1.0, 1.0))
    assert placement.free_spot((0, 0, 0), 1.0, []) == (0.0, 0.0, 0.0)
    x, _, _ = placement.free_spot((0, 0, 0), 1.0, [cube])
    assert x == pytest.approx(1.0 + 1.0 * 1.2)
    x, _, _ = placement.free_spot((0, 0, 0), 1.0, [cube, beside])
    assert x == pytest.approx(4.0 + 1.2)
    assert placement.free_spot((0, 9, 0), 1.0, [cube, beside]) == (0.0, 9.0, 0.0)
