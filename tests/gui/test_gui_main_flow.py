"""The main scenario (in_blender/main_flow.py) in one real Blender run; each test reads one part
of what it saw. Expected values come from what the scenario asked for (seeds, sizes, the cursor)
and from the job folders on disk, never from the add-on's code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from observed import (
    button,
    drawn,
    job_record,
    labels,
    messages,
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
    "details",
    "new_result",
    "imported",
)
UNUSABLE_PX = 95
"""Pixels of the sidebar's width a label's text cannot use (tabs, panel and box padding, an icon:
measured on the screenshots of a cut-off label)."""
COMMAND_LINE = ("HF_HUB_OFFLINE", "--weights-dir", "python -m backend", "`")


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


def weight_rows(checkpoint) -> dict[str, str]:
    """The Model Weights rows: file name -> icon."""
    items = drawn(checkpoint, "PARTPACKER_AddonPreferences")
    rows = {}
    for item in items:
        text = item["text"] or ""
        name = text.split(":")[0]
        if item["call"] == "label" and name in ("flow.pt", "vae.pt", "model.safetensors"):
            rows[name] = item["icon"]
    return rows


def test_check_backend_in_the_preferences_finds_the_weights(seen, at):
    assert seen["check_backend"]["result"] == ["FINISHED"]
    assert weight_rows(at["preferences"]) == dict.fromkeys(
        ("flow.pt", "vae.pt", "model.safetensors"), "CHECKMARK"
    )


def test_the_preferences_put_setup_first_with_one_check_and_readable_findings(seen, at):
    items = drawn(at["preferences"], "PARTPACKER_AddonPreferences")
    texts = [item["text"] or "" for item in items]
    setup, backend = texts.index("Backend Environment"), texts.index("Backend")
    checks = [
        i
        for i, item in enumerate(items)
        if item["call"] == "operator" and item["args"][0] == "partpacker.check_backend"
    ]
    assert len(checks) == 1 and setup < checks[0] < backend
    shown = " ".join(texts)
    for command_line in COMMAND_LINE:
        assert command_line not in shown
    too_wide = [i for i in items if i.get("width_px", 0) > seen["preferences_width"] - 60]
    assert not too_wide, too_wide
    lines = [item["text"] for item in items if item["call"] == "label" and item["text"]]
    assert len(lines) == len(set(lines)), "each finding once"


def test_no_setup_progress_shows_a_bare_bracket(seen):
    bars = [
        item["text"]
        for draw in seen["panel_history"]
        if draw["panel"] == "PARTPACKER_AddonPreferences"
        for item in draw["items"]
        if item["call"] == "progress"
    ]
    assert bars, "the check's progress was drawn"
    assert not [text for text in bars if text and not re.search(r"[A-Za-z0-9]", text)], bars


def test_switching_the_weights_source_checks_again(at):
    cache = drawn(at["preferences_cache"], "PARTPACKER_AddonPreferences")
    assert "ERROR" in weight_rows(at["preferences_cache"]).values() or any(
        item["icon"] == "ERROR" for item in cache if item["call"] == "label"
    ), "the empty cache has no weights"
    assert set(weight_rows(at["preferences_folder_again"]).values()) == {"CHECKMARK"}


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


def test_a_failed_prepare_takes_the_old_preview_away(seen, at):
    assert seen["prepare_picture"]["result"] == ["FINISHED"]
    assert [i for i in drawn(at["picture_prepared"]) if i["call"] == "template_icon"]
    failed = drawn(at["prepare_failed"])
    assert not [i for i in failed if i["call"] == "template_icon"]
    assert "transparent" in messages(failed)["ERROR"].lower()


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
    told = messages(items)
    assert set(told) >= {"ERROR", "INFO"}, labels(items)
    assert "fully transparent" in told["ERROR"].lower()
    assert "alpha channel" in told["INFO"], "what to do about it"
    assert set(objects(checkpoint)) == DEFAULT_SCENE
    assert checkpoint["state"]["busy"] is False
    assert usable(button(items, "partpacker.generate"))
    assert usable(button(items, "partpacker.show_details"))
    assert not [i for i in items if i["call"] == "template_icon"], "another image's preview"


def test_every_label_of_the_panel_fits_the_sidebar(at):
    for name, checkpoint in at.items():
        if name.startswith("preferences"):
            continue
        room = checkpoint["sidebar_width"] - UNUSABLE_PX
        for panel, draw in checkpoint["panels"].items():
            if panel.startswith("PARTPACKER_PT"):
                too_wide = [i for i in draw["items"] if i.get("width_px", 0) > room]
                assert not too_wide, (name, panel, room, too_wide)


def test_details_open_the_whole_error_in_a_text_window(seen):
    assert seen["details"]["result"] == ["FINISHED"]
    assert seen["details_windows"] == 1
    details = seen["details_text"]
    assert details["name"] == "PartPacker Details"
    assert "fully transparent: its alpha channel is 0 everywhere" in details["content"]
    assert "without an alpha channel" in details["content"]
    assert "Error code: bad_input" in details["content"]
    assert "last output" in details["content"]


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
    x, y, z = root["location"]
    assert (y, z) == pytest.approx((0, 0)), "at the 3D cursor of a new file..."
    assert x >= 2.0, "...but beside the default cube (-1 to 1), not inside it"
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


def selection(checkpoint) -> tuple[str | None, set[str]]:
    scene = checkpoint["scene"]
    return scene["active"], set(scene["selected"])


def result_panel_seed(checkpoint) -> str:
    (seed,) = [t for t in labels(drawn(checkpoint, "PARTPACKER_PT_result")) if t.startswith("Seed")]
    return seed


def imported_reports(reports: list[str]) -> list[str]:
    return [line for line in reports if re.search(r"\d+ parts? imported in \d+\.\d s", line)]


def test_a_new_result_is_selected_active_and_announced(seen, at):
    checkpoint = at["generated"]
    part_count = len(parts(checkpoint, "robot_7"))
    assert selection(checkpoint) == ("robot_7", {"robot_7", *parts(checkpoint, "robot_7")})
    assert result_panel_seed(checkpoint) == "Seed: 7"
    notice = [t for t in labels(drawn(checkpoint)) if "imported in" in t]
    assert notice and notice[0].startswith(f"{part_count} parts imported in"), notice
    announced = imported_reports(seen["reports_after_generate"])
    assert announced and f"{part_count} parts imported in" in announced[-1], seen[
        "reports_after_generate"
    ]


def test_no_name_gets_a_number_suffix(at):
    scene = at["imported"]["scene"]
    names = [*scene["objects"], *scene["materials"], *scene["collections"]]
    assert not [name for name in names if re.search(r"\.\d{3}$", name)], names


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
    assert selection(at["generated_again"]) == (name, {name, *parts(at["generated_again"], name)})
    assert result_panel_seed(at["generated_again"]) == f"Seed: {again['metadata']['seed']}"
    again_reports = imported_reports(seen["reports_after_generate_again"])
    assert len(again_reports) > len(imported_reports(seen["reports_after_generate"]))
    part_count = len(parts(at["generated_again"], name))
    assert f"{part_count} parts imported in" in again_reports[-1]


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
    assert name == "robot_7-2", "robot_7 is taken by the first import of this folder"
    assert all(part.startswith("robot_7-2_part_") for part in parts(at["imported"], name))
    assert selection(at["imported"]) == (name, {name, *parts(at["imported"], name)})
    assert result_panel_seed(at["imported"]) == "Seed: 7"
    import_reports = imported_reports(seen["reports_after_import"])
    assert len(import_reports) > len(imported_reports(seen["reports_after_generate_again"]))
    assert f"{len(parts(at['imported'], name))} parts imported in" in import_reports[-1]
    assert seen["undo_import"] == ["FINISHED"]
    assert set(objects(at["import_undone"])) == set(objects(at["generated_at_cursor"]))


def test_screenshots_show_the_screen(seen, blender_user):
    files = [f"{name}.png" for name in SCREENSHOTS]
    assert seen["screenshots"] == files
    for name in files:
        assert png_has_content(blender_user.folder / "main_flow" / name), name
