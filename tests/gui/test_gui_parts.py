"""The parts scenario (in_blender/parts_flow.py) in one real Blender run: variants through the
panel's timer, the parts list as Blender draws it, Keep This Variant, the Viewer Node and the
clipboard as input images."""

from __future__ import annotations

from pathlib import Path

import pytest
from observed import drawn, labels, objects, parts, png_has_content, results

PARTS_FLOW_TIMEOUT = 900.0
SEQUENCES = "PARTPACKER_PT_sequences"


@pytest.fixture(scope="module")
def seen(blender_user, default_scene, scenario_settings) -> dict:
    code, observations = blender_user.run_scenario(
        "parts_flow", default_scene, scenario_settings, PARTS_FLOW_TIMEOUT
    )
    assert observations["error"] is None, observations["error"]
    assert code == 0
    return observations


@pytest.fixture(scope="module")
def at(seen) -> dict:
    return seen["checkpoints"]


def test_variants_run_one_after_another_and_the_panel_says_which(seen, at):
    assert seen["variants"]["result"] == ["FINISHED"]
    for number in (1, 2, 3):
        shown = labels(drawn(at[f"variant_{number}_running"], SEQUENCES))
        assert f"Variant {number} of 3: seed {4 + number}" in shown
    assert "3 of 3 done" in labels(drawn(at["variants_done"], SEQUENCES))


def test_the_variants_stand_side_by_side_each_with_its_seed(at):
    found = results(at["variants_done"])
    assert sorted(found) == ["robot_5", "robot_6", "robot_7"]
    assert [found[n]["metadata"]["seed"] for n in sorted(found)] == [5, 6, 7]
    xs = sorted(found[n]["location"][0] for n in found)
    assert xs[1] - xs[0] == pytest.approx(2.5) and xs[2] - xs[1] == pytest.approx(2.5)


def test_the_parts_list_shows_the_selected_result_s_parts(seen, at, blender_user):
    shown = parts(at["parts_panel"], "robot_6")
    assert set(seen["list_rows"]) >= set(shown), "a row for every part of the result"
    assert not {n for n in seen["list_rows"] if n.startswith(("robot_5_", "robot_7_"))} - set(
        shown
    ), "no rows of the other results"
    items = drawn(at["parts_panel"], "PARTPACKER_PT_parts")
    assert [i["args"] for i in items if i["call"] == "prop"] == [['["partpacker_explode"]']]
    screenshot = Path(blender_user.folder) / "parts_flow" / "parts_panel.png"
    assert png_has_content(screenshot)


def test_keep_this_variant_leaves_only_it(seen, at):
    assert seen["keep_variant"]["result"] == ["FINISHED"]
    assert sorted(results(at["kept"])) == ["robot_6"]
    assert not [n for n in objects(at["kept"]) if n.startswith(("robot_5", "robot_7"))]


def test_the_viewer_node_image_becomes_the_input(seen):
    assert seen["viewer_node"] == {"result": ["FINISHED"], "report": None}
    assert png_has_content(Path(seen["viewer_node_input"]))


def test_the_clipboard_is_pasted_where_blender_copies_images(seen):
    """Blender 4.3 on Linux X11 copies no image (its own Image > Copy is cancelled): there the
    button says so; where the copy works, the pasted image becomes the input."""
    if seen["clipboard_copy"] == ["CANCELLED"]:
        assert seen["clipboard"]["result"] is None
        assert "The clipboard holds no image" in seen["clipboard"]["report"]
        return
    assert seen["clipboard_copy"] == ["FINISHED"], seen["clipboard_copy"]
    assert seen["clipboard"] == {"result": ["FINISHED"], "report": None}
    assert Path(seen["clipboard_input"]).name.startswith("clipboard-")
