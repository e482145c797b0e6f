"""The panels and the preferences (their setup section too) draw with real layouts in every state
(see draw_panels.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import drawn_in_own_process

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def drawn(tmp_path_factory) -> dict[str, list[dict]]:
    output = tmp_path_factory.mktemp("draw") / "drawn.json"
    return drawn_in_own_process([str(HERE / "draw_panels.py"), str(output)], output)


def calls(record: list[dict], name: str) -> list[dict]:
    return [entry for entry in record if entry["call"] == name]


def operators(record: list[dict]) -> list[str]:
    return [entry["args"][0] for entry in calls(record, "operator")]


def texts(record: list[dict], name: str = "label") -> list[str]:
    return [entry["text"] or "" for entry in calls(record, name)]


def test_no_draw_raises(drawn):
    failures = {state: calls(record, "EXCEPTION") for state, record in drawn.items()}
    assert not any(failures.values()), failures


def test_idle_panel_offers_prepare_and_generate_and_says_the_backend_is_not_set_up(drawn):
    idle = drawn["idle"]
    assert {"partpacker.prepare", "partpacker.generate"} <= set(operators(idle))
    assert "partpacker.cancel" not in operators(idle)
    assert "partpacker.free_memory" not in operators(idle), "no GPU memory is held yet"
    assert any("not set up" in text for text in texts(idle))
    assert "partpacker.show_preferences" in operators(idle), "where to set it up, one click"
    props = {entry["args"][0] for entry in calls(idle, "prop")}
    assert {"image_path", "steps", "cfg_scale", "grid_res", "seed", "randomize_seed"} <= props


def test_advanced_and_output_sections_hold_the_rest(drawn):
    advanced = {entry["args"][0] for entry in calls(drawn["advanced"], "prop")}
    assert advanced == {"simplify", "target_faces", "remove_small_pieces", "guidance_fraction"}
    output = {entry["args"][0] for entry in calls(drawn["output"], "prop")}
    assert output == {"size", "at_cursor", "shade_smooth", "new_collection"}


def test_datablock_picker_shows_thumbnails_of_the_image_and_the_segmentation(drawn):
    record = drawn["datablock"]
    assert [entry["args"] for entry in calls(record, "template_ID")] == [["image"]]
    assert len(calls(record, "template_icon")) == 2


def test_busy_panel_shows_stage_progress_and_cancel(drawn):
    record = drawn["busy"]
    (progress,) = texts(record, "progress")
    assert progress.startswith("Sampling 12/50")
    assert progress.endswith(" s")
    assert "partpacker.cancel" in operators(record)
    assert "Generate: robot" in texts(record)


def test_error_is_shown_in_plain_words_with_its_hint(drawn):
    labels = texts(drawn["error"])
    assert "The GPU ran out of memory" in labels
    assert "Lower the grid resolution" in labels
    assert "partpacker.show_details" in operators(drawn["error"])


def test_a_long_error_is_wrapped_to_the_sidebar_and_speaks_blenders_words(drawn):
    record = drawn["long_error"]
    room = drawn["room"][0]["text"]
    labels = [entry for entry in calls(record, "label") if entry["text"]]
    error_lines = labels[: next(i for i, e in enumerate(labels) if e["icon"] == "INFO")]
    assert error_lines[0]["icon"] == "ERROR" and len(error_lines) >= 2, "wrapped, not cut off"
    assert all(entry["width_px"] <= room for entry in labels), [
        (e["text"], e["width_px"], room) for e in labels if e["width_px"] > room
    ]
    shown = " ".join(entry["text"] for entry in labels)
    assert "background-removal model" in shown and "not downloaded yet" in shown
    for command_line in ("HF_HUB_OFFLINE", "--weights-dir", "python -m", "`"):
        assert command_line not in shown
    assert "Allow Online Access" in shown, "the switch in Blender that allows the download"
    assert "partpacker.show_details" in operators(record)


def test_details_hold_the_whole_error_the_backends_own_words_and_its_traceback(drawn):
    details = drawn["details_text"][0]["text"]
    assert "The background-removal model 'u2net' is not downloaded yet" in details
    assert "nset HF_HUB_OFFLINE, then run `python -m backend download`" in details
    assert "Error code: weights" in details
    assert "Traceback (most recent call last)" in details


def test_free_gpu_memory_is_offered_on_a_gpu_backend_only(drawn):
    assert "partpacker.free_memory" in operators(drawn["on_gpu"])
    assert "partpacker.free_memory" not in operators(drawn["on_cpu"])


def test_the_backend_status_icon_is_no_checkbox(drawn):
    icons = {entry["icon"] for state in drawn.values() for entry in calls(state, "label")}
    assert not {icon for icon in icons if icon and icon.startswith("CHECKBOX")}


def test_selected_result_panel_shows_its_metadata_and_rerun(drawn):
    assert drawn["result_poll"][0]["text"] is True
    labels = texts(drawn["result"])
    assert "Image: robot.png" in labels
    assert "Seed: 5" in labels
    assert "Generated in 2.0 s" in labels
    assert operators(drawn["result"]) == ["partpacker.rerun"]


def test_preferences_show_backend_settings_and_the_checks_findings(drawn):
    record = drawn["preferences"]
    props = [entry["args"][0] for entry in calls(record, "prop")]
    assert {"backend_python", "device", "weights_source", "keep_loaded_minutes"} <= set(props)
    assert props.index("weights_source") < props.index("device"), "setting up comes first"
    assert operators(record).count("partpacker.check_backend") == 1, "one Check button"
    labels = " ".join(texts(record))  # wrapped lines run on
    assert "CUDA was requested but is not available" in labels
    assert "choose auto" in labels.lower()


def test_each_finding_is_shown_once_in_plain_words(drawn):
    labels = " ".join(texts(drawn["preferences"]))
    assert labels.count("are missing in /w") == 1, labels
    for command_line in ("--weights-dir", "python -m", "`"):
        assert command_line not in labels
    assert "Download Weights" in labels


def test_the_findings_go_when_the_weights_source_changes(drawn):
    assert drawn["report_after_switch"][0]["text"] == "None"


def test_no_settings_heading_sits_beside_a_checkbox(drawn):
    """Backend, Weights and Worker were headings of columns that start with a checkbox."""
    headings = {e["heading"] for e in calls(drawn["preferences"], "column") if e.get("heading")}
    assert not headings & {"Backend", "Weights", "Worker"}, headings
    assert "Backend" in texts(drawn["preferences"]), "a heading of its own"


def test_times_in_the_preferences_say_their_unit(addon):
    properties = addon.preferences.PARTPACKER_AddonPreferences.bl_rna.properties
    assert "minutes" in properties["keep_loaded_minutes"].name
    assert "seconds" in properties["hang_timeout"].name


# --- The preferences' setup section ---------------------------------------------------------------


def test_setup_section_offers_setup_and_weights(drawn) -> None:
    record = drawn["setup_offline"]
    assert not calls(record, "EXCEPTION"), record
    assert {
        "partpacker.setup_backend",
        "partpacker.setup_backend_with_python",
        "partpacker.use_existing_python",
    } <= set(operators(record))
    assert "partpacker.download_weights" in operators(record)
    labels = " | ".join(texts(record))
    assert "Not set up yet" in labels
    for name, size in (
        ("flow.pt", "5.0 GB"),
        ("vae.pt", "1.4 GB"),
        ("model.safetensors", "4.5 GB"),
    ):
        assert name in labels and size in labels
    assert "Online access is off" in labels
    assert "Online access is off" not in " | ".join(texts(drawn["setup_online"]))


def test_setup_section_shows_progress_and_cancel_while_running(drawn) -> None:
    record = drawn["setup_running"]
    assert not calls(record, "EXCEPTION"), record
    assert "partpacker.cancel_setup" in operators(record)
    assert texts(record, "progress") == ["256.0 MB of 1.0 GB"]
    assert any("Install PyTorch" in text for text in texts(record))


def test_setup_section_shows_why_the_last_run_failed(drawn) -> None:
    labels = " ".join(texts(drawn["setup_failed"]))
    assert "No matching distribution found for torch" in labels, labels


def test_weights_section_shows_the_checks_word_on_each_file(drawn) -> None:
    record = drawn["setup_checked"]
    table_rows = [
        entry
        for entry in record
        if entry["call"] == "label" and (entry["text"] or "").endswith(("PartPacker)", "giant)"))
    ]
    icons = {entry["text"].split(":")[0]: entry["icon"] for entry in table_rows}
    assert icons.get("flow.pt") == "CHECKMARK"
    assert icons.get("vae.pt") == "ERROR"
    assert icons.get("model.safetensors") == "QUESTION"
    labels = " ".join(texts(record))
    assert "/w/vae.pt: truncated" in labels
    assert "Download it again" in labels
    assert labels.count("flow.pt") == 1, "a file that is fine is named once, in its row"
    assert "partpacker.check_backend" not in operators(record), "Check is above, once"
