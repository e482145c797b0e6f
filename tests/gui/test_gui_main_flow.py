"""The main scenario (in_blender/main_flow.py) in one real Blender run; each test reads one part
of what it saw. Expected values come from what the scenario asked for (seeds, sizes, the cursor)
and from the job folders on disk, never from the add-on's code."""

from __future__ import annotations

from pathlib import Path

import pytest
from observed import (
    button,
    drawn,
    job_record,
    labels,
    new_result,
    objects,
    parts,
    png_has_content,
    results,
    usable,
)

MAIN_FLOW_TIMEOUT = 900.0
DEFAULT_SCENE = {"Cube", "Camera", "Light"}
SCREENSHOTS = (
    "preferences",
    "preferences_setup",
    "bad_image_error",
    "new_result",
    "imported",
)


@pytest.fixture(scope="module")
def seen(blender_user, default_scene, scenario_settings) -> dict:
    code, observations = blender_user.run_scenario(
        "main_flow", default_scene, scenario_settings, MAIN_FLOW_TIMEOUT
    )
    assert observations["error"] is None, observations["error"]
    assert code == 0
    return observations


@pytest.fixture(scope="module")
def at(seen) -> dict:
    return seen["checkpoints"]


def test_the_scenario_starts_in_the_default_scene_with_the_panel_drawn(at):
    assert set(objects(at["start"])) == DEFAULT_SCENE
    assert at["start"]["panels"]["PARTPACKER_PT_main"]["items"], "the sidebar panel was drawn"


def test_check_backend_in_the_preferences_finds_the_weights(seen, at):
    assert seen["check_backend"]["result"] == ["FINISHED"]
    findings = drawn(at["preferences"], "PARTPACKER_AddonPreferences")
    for weight_file in ("flow.pt", "vae.pt", "model.safetensors"):
        shown = [i for i in findings if i["call"] == "label" and weight_file in (i["text"] or "")]
        assert any(i["icon"] == "CHECKMARK" and "match" in i["text"] for i in shown), shown


def test_a_missing_image_is_reported_by_name_and_nothing_starts(seen, at, scenario_settings):
    report = seen["missing_image"]["report"]
    assert report is not None and report.startswith("Error")
    assert Path(scenario_settings["missing_image"]).name in report
    assert any(words in report for words in ("does not exist", "not found", "no such"))
    checkpoint = at["missing_image"]
    assert checkpoint["state"]["busy"] is False
    assert checkpoint["workers"] == [], "no backend was started for it"
    assert set(objects(checkpoint)) == DEFAULT_SCENE
    assert usable(button(drawn(checkpoint), "partpacker.generate"))


def test_prepare_shows_the_segmentation_in_the_panel(seen, at):
    assert seen["prepare"]["result"] == ["FINISHED"]
    previews = [i for i in drawn(at["prepared"]) if i["call"] == "template_icon"]
    assert not [i for i in drawn(at["start"]) if i["call"] == "template_icon"]
    assert len(previews) == 1, "the segmentation's thumbnail"
    assert at["prepared"]["state"] == {"busy": False, "error": None}
    assert set(objects(at["prepared"])) == DEFAULT_SCENE


def test_a_fully_transparent_image_is_explained_in_the_panel(seen, at):
    assert seen["transparent_image"]["result"] == ["FINISHED"], "the job starts"
    checkpoint = at["transparent_image"]
    items = drawn(checkpoint)
    error = [i for i in items if i["call"] == "label" and i["icon"] == "ERROR"]
    hint = [i for i in items if i["call"] == "label" and i["icon"] == "INFO"]
    assert len(error) == 1 and "transparent" in error[0]["text"].lower(), labels(items)
    assert len(hint) == 1 and hint[0]["text"], "what to do about it"
    assert set(objects(checkpoint)) == DEFAULT_SCENE
    assert checkpoint["state"]["busy"] is False
    assert usable(button(items, "partpacker.generate"))


@pytest.mark.parametrize("left", ["transparent_image_as_left", "generated_as_left"])
def test_the_panel_shows_the_end_of_a_job_without_being_touched(at, left):
    """Drawn by itself after the job ended (the harness redrew nothing): Generate is back and no
    progress bar is left."""
    items = drawn(at[left])
    assert usable(button(items, "partpacker.generate"))
    assert button(items, "partpacker.cancel") is None
    assert not [i for i in items if i["call"] == "progress"]


def test_generate_returns_at_once_and_the_panel_shows_the_stages_while_it_runs(seen):
    assert seen["generate"]["result"] == ["FINISHED"]
    assert seen["generate_busy_at_once"] is True, "the operator does not wait for the job"
    main = [h["items"] for h in seen["panel_history"] if h["panel"] == "PARTPACKER_PT_main"]
    sampling = [i for i in main if any("Sampling" in (x["text"] or "") for x in i)]
    assert sampling, "a draw showed the sampler's progress"
    for items in sampling:
        assert not button(items, "partpacker.generate")["enabled"], "Generate is greyed out"
        assert usable(button(items, "partpacker.cancel"))
        assert [i for i in items if i["call"] == "progress"]


def test_a_result_is_an_empty_with_one_object_per_part_in_its_own_collection(at):
    checkpoint = at["generated"]
    assert set(results(checkpoint)) == {"robot_7"}
    root = results(checkpoint)["robot_7"]
    record = job_record(root)
    assert root["type"] == "EMPTY" and root["metadata"]["seed"] == 7
    assert root["metadata"]["params"]["steps"] == 2
    assert root["metadata"]["params"]["grid_res"] == 32
    assert root["location"] == pytest.approx([0, 0, 0]), "the 3D cursor of a new file"
    assert root["scale"] == pytest.approx([1, 1, 1]), "the default size of 2 m spans [-1, 1]"
    meshes = parts(checkpoint, "robot_7")
    assert len(meshes) == len(record["parts"]) > 0
    assert sorted(o["faces"] for o in meshes.values()) == sorted(
        p["faces"] for p in record["parts"]
    )
    for part in meshes.values():
        assert part["type"] == "MESH"
        assert part["collections"] == ["robot_7"]
        assert len(part["materials"]) == 1
    assert len({p["materials"][0] for p in meshes.values()}) == len(meshes), "own materials"
    assert DEFAULT_SCENE.issubset(objects(checkpoint)), "the scene as it was, plus the result"
    assert checkpoint["state"]["error"] is None


def test_undo_removes_the_whole_result_and_redo_brings_it_back(seen, at):
    assert seen["undo"] == ["FINISHED"] and seen["redo"] == ["FINISHED"]
    assert set(objects(at["undone"])) == DEFAULT_SCENE
    assert at["undone"]["scene"]["collections"] == at["start"]["scene"]["collections"]
    assert set(objects(at["redone"])) == set(objects(at["generated"]))


def test_selected_result_panel_offers_generate_again(at):
    items = drawn(at["result_selected"], "PARTPACKER_PT_result")
    assert "Seed: 7" in labels(items)
    assert usable(button(items, "partpacker.rerun"))


def test_generate_again_reruns_the_selected_result_with_a_new_seed(seen, at):
    assert seen["generate_again"]["result"] == ["FINISHED"]
    name = new_result(at["result_selected"], at["generated_again"])
    again = results(at["generated_again"])[name]
    first = results(at["generated"])["robot_7"]
    assert again["metadata"]["seed"] != 7
    same_picture = Path(again["files"]["image"]).read_bytes()
    assert same_picture == Path(first["files"]["image"]).read_bytes()
    assert again["files"]["image"] != first["files"]["image"], "each job keeps its own copy"
    for parameter in ("steps", "grid_res", "cfg_scale"):
        assert again["metadata"]["params"][parameter] == first["metadata"]["params"][parameter]
    assert len(parts(at["generated_again"], name)) == len(job_record(again)["parts"]) > 0


def test_cancel_mid_job_says_so_then_imports_nothing_and_reports_no_error(seen, at):
    assert seen["cancel"]["result"] == ["FINISHED"]
    cancelling = at["cancelling"]
    assert cancelling["state"]["busy"] is True, "the job was still running when cancelled"
    bars = [i["text"] for i in drawn(cancelling) if i["call"] == "progress"]
    assert bars and "Cancel" in bars[0]
    cancelled = at["cancelled"]
    assert cancelled["state"] == {"busy": False, "error": None}
    assert set(objects(cancelled)) == set(objects(at["generated_again"]))
    items = drawn(cancelled)
    assert not [i for i in items if i["call"] == "label" and i["icon"] == "ERROR"]
    assert usable(button(items, "partpacker.generate"))


def test_after_a_cancel_generate_works_and_lands_at_the_cursor_at_its_size(seen, at):
    assert seen["generate_at_cursor"]["result"] == ["FINISHED"]
    name = new_result(at["cancelled"], at["generated_at_cursor"])
    root = results(at["generated_at_cursor"])[name]
    assert root["metadata"]["seed"] == 11
    assert root["location"] == pytest.approx([0.0, 4.0, 0.5])
    assert root["scale"] == pytest.approx([1.5, 1.5, 1.5]), "3 m across"
    assert len(parts(at["generated_at_cursor"], name)) == len(job_record(root)["parts"])


def test_import_job_folder_through_its_file_browser_and_undo_it(seen, at):
    assert seen["import_folder"]["result"] == ["RUNNING_MODAL"], "the file browser opened"
    assert seen["file_browser_accept"] == ["FINISHED"]
    name = new_result(at["generated_at_cursor"], at["imported"])
    root = results(at["imported"])[name]
    assert root["metadata"]["job_folder"] == seen["imported_folder"]
    record = job_record(root)
    assert len(parts(at["imported"], name)) == len(record["parts"]) > 0
    assert seen["undo_import"] == ["FINISHED"]
    assert set(objects(at["import_undone"])) == set(objects(at["generated_at_cursor"]))


def test_screenshots_show_the_screen(seen, blender_user):
    files = [f"{name}.png" for name in SCREENSHOTS]
    assert seen["screenshots"] == files
    for name in files:
        assert png_has_content(blender_user.folder / "main_flow" / name), name
