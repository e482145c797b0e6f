"""The parts list's actions through their operators, in the real bpy: click to select, select
and hide toggles, isolate, join selected, separate into connected pieces, with explode kept."""

from __future__ import annotations

import bpy
import numpy as np
import pytest
from helpers import parts_arrays, sample_parts, write_npz


@pytest.fixture
def result(addon, tmp_path):
    spheres, colors = sample_parts()
    npz = write_npz(tmp_path / "parts.npz", parts_arrays(spheres, colors))
    imported = addon.importer.import_parts(npz, bpy.context.scene, stem="robot")
    for obj in bpy.context.view_layer.objects:  # a result arrives selected: start from nothing
        obj.select_set(False)
    bpy.context.view_layer.objects.active = imported.parts[0]
    return imported


def face_total(objects) -> int:
    return sum(len(o.data.polygons) for o in objects)


def world_vertices(objects) -> np.ndarray:
    bpy.context.view_layer.update()
    points = []
    for obj in objects:
        matrix = np.array(obj.matrix_world)
        local = np.array([v.co for v in obj.data.vertices])
        points.append(local @ matrix[:3, :3].T + matrix[:3, 3])
    return np.concatenate(points)


def sorted_rows(points: np.ndarray) -> np.ndarray:
    return points[np.lexsort(points.T[::-1])]


def test_clicking_a_row_selects_only_that_part(result):
    settings = bpy.context.window_manager.partpacker_parts
    result.parts[0].select_set(True)
    settings.active_part = bpy.data.objects.find(result.parts[2].name)
    assert bpy.context.view_layer.objects.active == result.parts[2]
    assert [p.select_get() for p in result.parts] == [False, False, True]
    assert settings.active_part == bpy.data.objects.find(result.parts[2].name)


def test_select_and_hide_toggles(result):
    part = result.parts[1]
    assert bpy.ops.partpacker.part_select(part=part.name) == {"FINISHED"}
    assert part.select_get()
    bpy.ops.partpacker.part_select(part=part.name)
    assert not part.select_get()
    bpy.ops.partpacker.part_visibility(part=part.name)
    assert part.hide_get()
    bpy.ops.partpacker.part_visibility(part=part.name)
    assert not part.hide_get()


def test_isolate_shows_one_part_and_again_shows_all(result):
    bpy.ops.partpacker.part_isolate(part=result.parts[1].name)
    assert [p.hide_get() for p in result.parts] == [True, False, True]
    bpy.ops.partpacker.part_isolate(part=result.parts[1].name)
    assert [p.hide_get() for p in result.parts] == [False, False, False]


def test_join_selected_makes_one_part_with_their_faces_and_colours(addon, result):
    addon.api.explode(result.root, 1.0)
    first, second, third = result.parts
    assembled_third = tuple(third.matrix_world.translation)
    for part in (first, second):
        part.select_set(True)
    expected_faces = face_total([first, second])
    addon.api.explode(result.root, 0.0)
    assembled = sorted_rows(world_vertices([first, second]))
    addon.api.explode(result.root, 1.0)

    assert bpy.ops.partpacker.join_parts() == {"FINISHED"}
    parts = addon.parts.result_parts.parts_of(result.root)
    assert [p.name for p in parts] == ["robot_part_000", "robot_part_002"]
    joined = parts[0]
    assert len(joined.data.polygons) == expected_faces
    assert len(joined.material_slots) == 2

    addon.api.explode(result.root, 0.0)
    np.testing.assert_allclose(sorted_rows(world_vertices([joined])), assembled, atol=1e-5)
    assert tuple(third.matrix_world.translation) == pytest.approx(assembled_third)
    addon.api.explode(result.root, 1.0)
    bpy.context.view_layer.update()
    assert joined.delta_location.length > 0, "the joined part is driven too"


def test_join_needs_two_parts(result):
    result.parts[0].select_set(True)
    with pytest.raises(RuntimeError, match="two or more parts"):
        bpy.ops.partpacker.join_parts()


def test_separate_splits_a_joined_part_back_into_connected_pieces(addon, result):
    addon.api.explode(result.root, 0.5)
    for part in result.parts:
        part.select_set(True)
    bpy.ops.partpacker.join_parts()
    (joined,) = addon.parts.result_parts.parts_of(result.root)
    addon.api.explode(result.root, 0.0)
    assembled = sorted_rows(world_vertices([joined]))

    joined.select_set(True)
    assert bpy.ops.partpacker.separate_parts() == {"FINISHED"}
    pieces = addon.parts.result_parts.parts_of(result.root)
    spheres, _ = sample_parts()
    assert sorted(len(p.data.polygons) for p in pieces) == sorted(len(f) for _, f in spheres)
    np.testing.assert_allclose(sorted_rows(world_vertices(pieces)), assembled, atol=1e-5)
    assert all(p.parent == result.root for p in pieces)

    addon.api.explode(result.root, 1.0)
    bpy.context.view_layer.update()
    assert all(p.delta_location.length > 0 for p in pieces), "each piece moves on its own"


def test_scripts_join_separate_and_isolate_through_the_api(addon, result):
    api = addon.api
    joined = api.join_parts(result.parts[:2])
    assert api.result_parts(result.root) == [joined, result.parts[2]]
    pieces = api.separate_parts([joined])
    assert len(api.result_parts(result.root)) == 3
    assert sorted(len(p.data.polygons) for p in pieces) == sorted(
        len(f) for _, f in sample_parts()[0][:2]
    )
    api.isolate_part(pieces[0])
    assert [p.hide_get() for p in api.result_parts(result.root)].count(False) == 1
    stranger = bpy.data.objects.new("stranger", bpy.data.meshes.new("stranger"))
    with pytest.raises(addon.parts.editing.PartsEditError, match="not parts of a PartPacker"):
        api.join_parts([stranger])
    with pytest.raises(addon.parts.editing.PartsEditError, match="stranger is not a part"):
        api.join_parts([result.parts[2], stranger])
