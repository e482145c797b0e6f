"""The parts panel draws with real layouts (draw_parts_panel.py): the explode slider, the list,
and each row's colour, name, face count and toggles in their states."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import drawn_in_own_process, sample_parts

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def drawn(tmp_path_factory) -> dict[str, list[dict]]:
    output = tmp_path_factory.mktemp("draw") / "drawn.json"
    return drawn_in_own_process([str(HERE / "draw_parts_panel.py"), str(output)], output)


def calls(record: list[dict], name: str) -> list[dict]:
    return [entry for entry in record if entry["call"] == name]


def operator_icons(record: list[dict]) -> dict[str, str]:
    return {entry["args"][0]: entry["icon"] for entry in calls(record, "operator")}


def test_no_draw_raises(drawn):
    failures = {state: calls(record, "EXCEPTION") for state, record in drawn.items()}
    assert not any(failures.values()), failures


def test_the_panel_shows_for_a_result_only(drawn):
    assert drawn["poll"][0]["text"] is True
    assert drawn["poll_nothing"][0]["text"] is False


def test_the_panel_has_the_slider_the_list_join_separate_and_export(drawn):
    panel = drawn["panel"]
    assert [e["args"] for e in calls(panel, "prop")] == [['["partpacker_explode"]']]
    assert [e["args"][0] for e in calls(panel, "template_list")] == ["PARTPACKER_UL_parts"]
    assert set(operator_icons(panel)) == {
        "partpacker.join_parts",
        "partpacker.separate_parts",
        "partpacker.export_parts",
    }
    without = operator_icons(drawn["panel_without_slider"])
    assert "partpacker.add_explode" in without
    assert not calls(drawn["panel_without_slider"], "prop")


def test_the_list_shows_the_parts_of_the_selected_result_only(drawn):
    """Not its Empty, nor anything else in the file."""
    assert drawn["listed"][0]["args"] == ["robot_part_000", "robot_part_001", "robot_part_002"]


def test_a_row_has_colour_name_faces_and_the_toggles(drawn):
    row = drawn["row"]
    assert [e["args"] for e in calls(row, "prop")] == [["diffuse_color"], ["name"]]
    spheres, _ = sample_parts()
    assert [e["text"] for e in calls(row, "label")] == [f"{len(spheres[1][1]):,}"]
    assert operator_icons(row) == {
        "partpacker.part_select": "RESTRICT_SELECT_ON",
        "partpacker.part_visibility": "HIDE_OFF",
        "partpacker.part_isolate": "SOLO_OFF",
    }


def test_the_toggles_show_their_state(drawn):
    isolated = operator_icons(drawn["row_isolated"])
    assert isolated["partpacker.part_select"] == "RESTRICT_SELECT_OFF"
    assert isolated["partpacker.part_isolate"] == "SOLO_ON"
    assert operator_icons(drawn["row_hidden"])["partpacker.part_visibility"] == "HIDE_ON"


def labels(record: list[dict]) -> list[str]:
    return [e["text"] for e in calls(record, "label")]


def test_the_variants_and_batch_panel_offers_both(drawn):
    none = drawn["sequence_none"]
    assert {"partpacker.generate_variants", "partpacker.generate_batch"} <= set(
        operator_icons(none)
    )
    assert [e["args"] for e in calls(none, "prop")] == [["variant_count"], ["batch_folder"]]
    assert not labels(none)


def test_a_running_sequence_says_which_job_runs_and_offers_cancel(drawn):
    running = drawn["sequence_running"]
    assert labels(running) == ["Variant 2 of 3: seed 8"]
    assert "partpacker.cancel_sequence" in operator_icons(running)


def test_an_ended_sequence_lists_what_failed_and_why(drawn):
    ended = drawn["sequence_ended"]
    assert labels(ended) == [
        "2 of 3 done, 1 failed",
        "seed 8: the GPU ran out of memory (lower the grid resolution)",
    ]
    assert "partpacker.dismiss_sequence" in operator_icons(ended)
    assert "partpacker.cancel_sequence" not in operator_icons(ended)


def operator_calls(record: list[dict]) -> list[str]:
    return [e["args"][0] for e in calls(record, "operator")]


def test_an_empty_history_says_so(drawn):
    assert labels(drawn["history_empty"]) == ["No generations yet"]


def test_a_history_entry_shows_its_preview_seed_and_settings_and_its_actions(drawn):
    history = drawn["history"]
    assert len(calls(history, "template_icon")) == 1, "the preview"
    title, details = labels(history)
    assert title == "robot.png · seed 5"
    assert details.endswith("· 4 steps · grid 64 · 0 parts")
    assert operator_calls(history) == [
        "partpacker.history_import",
        "partpacker.history_rerun",
        "partpacker.history_rerun",
        "wm.path_open",
        "wm.path_open",
    ]


def test_image_from_blender_has_a_button_per_source(drawn):
    record = drawn["image_sources"]
    assert operator_calls(record) == ["partpacker.image_from_blender"] * 5
    assert [e["text"] for e in calls(record, "operator")] == [
        "Render Result",
        "Viewer Node",
        "Image Editor",
        "Camera Render",
        "Clipboard",
    ]
