"""What the panel says: backend errors in the user's words, sentences that keep a file name's
case, text wrapped to a width, notices, and the note a discarded job leaves for the next start."""

from __future__ import annotations

import json

import bpy
import pytest


@pytest.fixture
def messages(addon):
    return addon.messages


COMMAND_LINE = ("HF_HUB_OFFLINE", "--weights-dir", "python -m backend", "`", "$")


@pytest.mark.parametrize(
    ("code", "message", "hint", "expected_words"),
    [
        (
            "weights",
            "weights folder /w does not exist",
            "run `python -m backend download`, or point --weights-dir at a folder with them",
            "Download the weights",
        ),
        (
            "weights",
            "HF_HUB_OFFLINE is set, so nothing can be downloaded, and flow.pt is missing",
            "unset HF_HUB_OFFLINE and run the download again, or copy the files in by hand",
            "in the add-on's preferences",
        ),
        (
            "weights",
            "the background-removal model 'u2net' is not downloaded yet, and downloads are off "
            "(HF_HUB_OFFLINE)",
            "allow downloads once",
            "Allow Online Access",
        ),
        (
            "worker_died",
            "the backend stopped unexpectedly (exit code 1)",
            "check the backend in the add-on preferences; its last output is in the system console",
            "Details",
        ),
        (
            "bad_input",
            "notes.txt is not an image file that can be read",
            "Use a PNG, JPEG, WebP, BMP, TGA or TIFF image.",
            "TGA",
        ),
    ],
)
def test_errors_are_told_in_blenders_words(messages, code, message, hint, expected_words):
    shown_message, shown_hint = messages.user_error(code, message, hint)
    shown = f"{shown_message} {shown_hint}"
    assert expected_words in shown
    for command_line in COMMAND_LINE:
        assert command_line not in shown, shown
    assert shown_message[:1] == shown_message[:1].upper() or shown_message.startswith("notes.txt")


def test_an_error_keeps_what_the_backend_found(messages):
    message, hint = messages.user_error(
        "bad_input", "the image is fully transparent: its alpha channel is 0 everywhere", ""
    )
    assert message == "The image is fully transparent: its alpha channel is 0 everywhere"
    assert hint == ""
    message, hint = messages.user_error("out_of_memory", "the GPU ran out of memory", "lower it")
    assert (message, hint) == ("The GPU ran out of memory", "Lower it")


def test_a_sentence_keeps_the_case_of_a_file_name_or_path_it_starts_with(addon):
    sentence = addon.problems.sentence
    assert sentence("notes.txt is not an image") == "notes.txt is not an image"
    assert sentence("/tmp/x.png is a folder") == "/tmp/x.png is a folder"
    assert sentence("the image is missing") == "The image is missing"
    assert sentence("e") == "E"


def test_stage_names_read_as_words(messages):
    assert messages.stage_name("sample") == "Sampling"
    assert messages.stage_name("decode_chunks") == "Decode chunks"


def test_wrapping_keeps_every_word_and_every_line_within_the_width(addon):
    ui_text = addon.ui_text
    text = "Export the image with the object visible, or without an alpha channel " * 3
    measure = len  # one unit per character
    lines = ui_text.wrap(text, 30, measure)
    assert all(len(line) <= 30 for line in lines), lines
    assert " ".join(lines).split() == text.split()
    long_path = "/very/long/" + "x" * 70 + "/robot.png"
    pieces = ui_text.wrap(long_path, 30, measure)
    assert "".join(pieces) == long_path and all(len(p) <= 30 for p in pieces)
    assert ui_text.wrap("server http://gpu-box.example:7860/jobs", 26, measure) == [
        "server",
        "http://",
        "gpu-box.example:7860/jobs",
    ]
    assert ui_text.wrap("", 30, measure) == []


def test_wrapping_measures_in_the_ui_font(addon):
    ui_text = addon.ui_text
    narrow, wide = ui_text.text_width(bpy.context, "iiii"), ui_text.text_width(bpy.context, "WWWW")
    assert 0 < narrow < wide


def test_a_job_discarded_at_exit_is_noted_and_told_at_the_next_start(addon, tmp_path):
    discarded, session = addon.discarded, addon.session
    discarded.watch(tmp_path)
    current = session.current()
    current.task = session.Task("generate", "robot", "Scene", 0)
    try:
        discarded.note_running_job()
    finally:
        current.task = None
    note = json.loads((tmp_path / "discarded_job.json").read_text())
    assert "generate job (robot)" in note["text"] and "discarded" in note["text"]
    addon.notices.forget()
    discarded.watch(tmp_path)  # the next start
    assert addon.notices.latest().startswith("Last time, PartPacker stopped")
    assert not (tmp_path / "discarded_job.json").exists(), "told once"
    discarded.note_running_job()  # nothing running: no note
    assert not (tmp_path / "discarded_job.json").exists()
    discarded.watch(addon.settings.user_folder())
