"""Explode: the slider on a result's Empty moves each part out from the result's centre by the
part's own offset, animatable, and back to exactly the assembled model. Expected offsets come
from the sample spheres' vertices, not from the add-on."""

from __future__ import annotations

import bpy
import numpy as np
import pytest
from helpers import GLTF_TO_BLENDER, parts_arrays, sample_parts, write_npz

SIZE = 4.0


@pytest.fixture
def result(addon, tmp_path):
    spheres, colors = sample_parts()
    npz = write_npz(tmp_path / "parts.npz", parts_arrays(spheres, colors))
    options = addon.importer.ImportOptions(size=SIZE, location=(1.0, 2.0, 3.0))
    return addon.importer.import_parts(npz, bpy.context.scene, stem="robot", options=options)


def world_positions(parts) -> np.ndarray:
    bpy.context.view_layer.update()
    depsgraph = bpy.context.evaluated_depsgraph_get()
    return np.array([list(p.evaluated_get(depsgraph).matrix_world.translation) for p in parts])


def expected_offsets() -> np.ndarray:
    """Each part's bounding-box centre minus the centre of those, in world metres."""
    spheres, _ = sample_parts()
    boxes = [(v.min(axis=0) + v.max(axis=0)) / 2 for v, _ in spheres]
    centres = np.array(boxes) @ GLTF_TO_BLENDER.T * (SIZE / 2)
    middle = (centres.min(axis=0) + centres.max(axis=0)) / 2
    return centres - middle


def test_explode_moves_each_part_along_its_own_direction_and_back_exactly(addon, result):
    assert bpy.context.preferences.filepaths.use_scripts_auto_execute is False
    assembled = world_positions(result.parts)

    addon.api.explode(result.root, 0.5)
    np.testing.assert_allclose(
        world_positions(result.parts) - assembled, 0.5 * expected_offsets(), atol=1e-5
    )
    addon.api.explode(result.root, 2.0)
    np.testing.assert_allclose(
        world_positions(result.parts) - assembled, 2.0 * expected_offsets(), atol=1e-5
    )
    addon.api.explode(result.root, 0.0)
    assert np.array_equal(world_positions(result.parts), assembled)


def test_the_drivers_need_no_python(result):
    """Simple expressions run with "Auto Run Python Scripts" off (as in this module)."""
    for part in result.parts:
        drivers = part.animation_data.drivers
        assert sorted(d.array_index for d in drivers) == [0, 1, 2]
        assert all(d.data_path == "delta_location" for d in drivers)
        assert all(d.driver.is_simple_expression and d.driver.is_valid for d in drivers)


def test_keyframed_explode_animates_the_parts(addon, result):
    scene, root = bpy.context.scene, result.root
    assembled = world_positions(result.parts)
    key = addon.parts.explode.EXPLODE_KEY
    for frame, amount in ((1, 0.0), (11, 1.0)):
        root[key] = amount
        root.keyframe_insert(f'["{key}"]', frame=frame)
    fcurve = root.animation_data.action.fcurves[0]
    for point in fcurve.keyframe_points:
        point.interpolation = "LINEAR"

    scene.frame_set(6)
    np.testing.assert_allclose(
        world_positions(result.parts) - assembled, 0.5 * expected_offsets(), atol=1e-5
    )
    scene.frame_set(11)
    np.testing.assert_allclose(
        world_positions(result.parts) - assembled, expected_offsets(), atol=1e-5
    )
    scene.frame_set(1)
    assert np.array_equal(world_positions(result.parts), assembled)


def test_the_slider_survives_saving_and_loading(addon, result, tmp_path):
    path = tmp_path / "exploded.blend"
    addon.api.explode(result.root, 1.0)
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path))
    root = bpy.data.objects["robot"]
    parts = sorted(root.children, key=lambda o: o.name)
    exploded = world_positions(parts)
    addon.api.explode(root, 0.0)
    np.testing.assert_allclose(exploded - world_positions(parts), expected_offsets(), atol=1e-5)


def test_a_result_made_before_explode_gets_the_slider_on_first_use(addon, result):
    root = result.root
    del root[addon.parts.explode.EXPLODE_KEY]
    for part in result.parts:
        part.driver_remove("delta_location")
    assembled = world_positions(result.parts)
    addon.api.explode(root, 1.0)
    np.testing.assert_allclose(
        world_positions(result.parts) - assembled, expected_offsets(), atol=1e-5
    )


def test_a_negative_amount_is_refused(addon, result):
    with pytest.raises(ValueError, match="0 or more"):
        addon.api.explode(result.root, -1.0)
    assert result.root[addon.parts.explode.EXPLODE_KEY] == 0.0
