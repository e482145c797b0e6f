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
    assert {"partpacker.prepare", "partpacker.generate", "partpacker.free_memory"} <= set(
        operators(idle)
    )
    assert "partpacker.cancel" not in operators(idle)
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


def test_selected_result_panel_shows_its_metadata_and_rerun(drawn):
    assert drawn["result_poll"][0]["text"] is True
    labels = texts(drawn["result"])
    assert "Image: robot.png" in labels
    assert "Seed: 5" in labels
    assert "Generated in 2.0 s" in labels
    assert operators(drawn["result"]) == ["partpacker.rerun"]


def test_preferences_show_backend_settings_and_the_checks_findings(drawn):
    record = drawn["preferences"]
    props = {entry["args"][0] for entry in calls(record, "prop")}
    assert {"backend_python", "device", "weights_source", "keep_loaded_minutes"} <= props
    assert "partpacker.check_backend" in operators(record)
    labels = texts(record)
    assert "flow.pt is missing" in labels
    assert any("download the weights" in label for label in labels)


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
    labels = texts(drawn["setup_failed"])
    assert any("No matching distribution found for torch" in text for text in labels), labels


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
    labels = texts(record)
    assert any("vae.pt: truncated" in text for text in labels)
    assert any("download it again" in text for text in labels)
    assert "partpacker.check_backend" in operators(record)
