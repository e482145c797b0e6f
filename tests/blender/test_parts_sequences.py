"""Variants and batch through a real backend worker with tiny random weights (conftest.py's
`backend`): distinct seeds and places, a broken image reported while the rest finish, cancel
stopping the rest, keeping one variant."""

from __future__ import annotations

import shutil
import time

import bpy
import numpy as np
import pytest
from addon_setup import REPO_ROOT

ROBOT = REPO_ROOT / "examples" / "robot.png"
QUICK = {"grid_res": 16, "steps": 1}


@pytest.fixture(autouse=True)
def no_sequence_left(addon):
    """The panel's last sequence is module state: none carries over to the next test."""
    yield
    addon.parts.sequence.set_current_sequence(None)


def roots_in_scene(addon) -> list[bpy.types.Object]:
    return sorted(
        (o for o in bpy.data.objects if addon.importer.ROOT_KEY in o), key=lambda o: o.name
    )


def test_variants_are_distinct_results_side_by_side(addon, backend):
    bpy.context.scene.cursor.location = (0.0, 0.0, 0.0)
    roots = addon.api.generate_variants(ROBOT, count=3, seed=11, size=2.0, **QUICK)

    assert roots == roots_in_scene(addon)
    assert [r["partpacker"]["seed"] for r in roots] == [11, 12, 13]
    assert [r.name for r in roots] == ["robot_11", "robot_12", "robot_13"]
    np.testing.assert_allclose(
        [tuple(r.location) for r in roots], [(0, 0, 0), (2.5, 0, 0), (5.0, 0, 0)], atol=1e-6
    )
    folders = {r["partpacker"]["job_folder"] for r in roots}
    assert len(folders) == 3
    assert all(len(addon.parts.result_parts.parts_of(r)) > 0 for r in roots)


def test_variants_of_a_missing_image_start_nothing(addon, backend, tmp_path):
    with pytest.raises(addon.image_input.ImageInputError, match="does not exist"):
        addon.api.generate_variants(tmp_path / "nothing.png", count=3)
    assert addon.session.current().task is None
    with pytest.raises(ValueError, match="1 to 16"):
        addon.api.generate_variants(ROBOT, count=0)


def test_random_variant_seeds_are_distinct(addon, backend):
    bpy.context.scene.partpacker.randomize_seed = True
    roots = addon.api.generate_variants(ROBOT, count=2, **QUICK)
    assert len({r["partpacker"]["seed"] for r in roots}) == 2


def test_keep_one_variant_deletes_the_others_and_their_data(addon, backend):
    roots = addon.api.generate_variants(ROBOT, count=3, seed=3, **QUICK)
    keep = roots[1]
    kept_parts = addon.parts.result_parts.parts_of(keep)
    bpy.context.view_layer.objects.active = kept_parts[0]

    assert bpy.ops.partpacker.keep_variant() == {"FINISHED"}
    assert roots_in_scene(addon) == [keep]
    assert set(bpy.data.meshes) == {p.data for p in kept_parts}
    assert {c.name for c in bpy.data.collections} == {"robot_4"}


def test_a_batch_reports_a_broken_image_and_finishes_the_rest(addon, backend, tmp_path):
    for name in ("a_robot.png", "c_robot.png"):
        shutil.copy(ROBOT, tmp_path / name)
    (tmp_path / "b_broken.png").write_bytes(b"not a picture at all")
    (tmp_path / "notes.txt").write_text("not an image: left out")
    bpy.context.scene.cursor.location = (0.0, 0.0, 0.0)

    batch = addon.api.generate_batch(tmp_path, seed=1, size=2.0, **QUICK)

    assert [i.label for i in batch.items] == ["a_robot.png", "b_broken.png", "c_robot.png"]
    assert [i.status for i in batch.items] == ["done", "failed", "done"]
    assert "b_broken.png" in batch.items[1].error
    assert "not an image" in batch.items[1].error, "the backend's reason"
    lines = batch.summary()
    assert lines[0] == "2 of 3 done, 1 failed"
    assert lines[1].startswith("b_broken.png: ")
    done = [i.imported.root for i in batch.items if i.imported is not None]
    assert [r.name for r in done] == ["a_robot_1", "c_robot_1"]
    # on a 2 x 2 grid: a at the first place of the first row, c at the first of the second
    np.testing.assert_allclose(
        [tuple(r.location) for r in done], [(0, 0, 0), (0, -2.5, 0)], atol=1e-6
    )


def test_a_folder_without_images_is_refused(addon, backend, tmp_path):
    with pytest.raises(addon.image_input.ImageInputError, match="holds no images"):
        addon.api.generate_batch(tmp_path)
    with pytest.raises(addon.image_input.ImageInputError, match="does not exist"):
        addon.api.generate_batch(tmp_path / "missing")


@pytest.mark.parametrize("cancel", ["cancel", "cancel_sequence"])
def test_cancel_stops_the_running_variant_and_the_rest(addon, backend, cancel):
    """The running job's Cancel, and the sequence's Cancel All."""
    sequence = addon.parts.variants.variant_sequence(
        bpy.context, 3, {"image_path": str(ROBOT), "seed": 1, "grid_res": 32, "steps": 50}
    )
    session = addon.session.current()
    assert sequence.step(bpy.context)
    assert sequence.position == 1 and sequence.items[0].status == "running"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        session.tick()
        progress = sequence.running.task.job.progress
        if progress is not None and progress.stage == "sample":
            break
        time.sleep(0.01)
    addon.parts.sequence.set_current_sequence(sequence)
    assert getattr(bpy.ops.partpacker, cancel)() == {"FINISHED"}
    session.wait(sequence.running.task)
    while sequence.step(bpy.context):
        pass
    assert [i.status for i in sequence.items] == ["cancelled"] * 3
    assert roots_in_scene(addon) == []
    assert sequence.summary()[0] == "0 of 3 done, 3 cancelled"


def quick_panel_settings(image: str = "") -> None:
    settings = bpy.context.scene.partpacker
    settings.grid_res, settings.steps = QUICK["grid_res"], QUICK["steps"]
    settings.image_path = image


def test_the_panel_buttons_run_variants_and_a_batch(addon, backend, tmp_path):
    quick_panel_settings(str(ROBOT))
    bpy.context.window_manager.partpacker_parts.variant_count = 2
    assert bpy.ops.partpacker.generate_variants() == {"FINISHED"}
    sequence = addon.parts.sequence.current_sequence()
    assert sequence.kind == "variants" and sequence.summary() == ["2 of 2 done"]
    assert len(roots_in_scene(addon)) == 2

    shutil.copy(ROBOT, tmp_path / "one.png")
    bpy.context.window_manager.partpacker_parts.batch_folder = str(tmp_path)
    assert bpy.ops.partpacker.generate_batch() == {"FINISHED"}
    assert addon.parts.sequence.current_sequence().summary() == ["1 of 1 done"]
    assert len(roots_in_scene(addon)) == 3
    assert bpy.ops.partpacker.dismiss_sequence() == {"FINISHED"}
    assert addon.parts.sequence.current_sequence() is None


def test_the_batch_button_without_a_folder_says_so(addon, backend):
    bpy.context.window_manager.partpacker_parts.batch_folder = ""
    with pytest.raises(RuntimeError, match="No batch folder is chosen"):
        bpy.ops.partpacker.generate_batch()
