"""The preferences' backend choice as drawn (draw_remote_preferences.py): each choice shows its
own settings, the Hugging Face token saved on this computer is noticed, Blender offline is
said, and the panel's status line names where jobs go."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import drawn_in_own_process

HERE = Path(__file__).parent
SERVER = "http://gpu-box.studio.example:7860/"


@pytest.fixture(scope="module")
def drawn(tmp_path_factory) -> dict[str, list[dict]]:
    output = tmp_path_factory.mktemp("draw") / "drawn.json"
    return drawn_in_own_process([str(HERE / "draw_remote_preferences.py"), str(output)], output)


def props(record: list[dict]) -> set[str]:
    return {entry["args"][0] for entry in record if entry["call"] == "prop"}


def labels(record: list[dict]) -> list[str]:
    return [entry["text"] or "" for entry in record if entry["call"] == "label"]


def shown(record: list[dict]) -> str:
    """The labels' text run together (a long one is wrapped into several)."""
    return " ".join(labels(record))


def test_no_draw_raises(drawn):
    assert not [e for record in drawn.values() for e in record if e["call"] == "EXCEPTION"]


def test_this_computer_shows_no_remote_settings(drawn):
    assert "backend_kind" in props(drawn["local"])
    assert not {"server_url", "server_token", "space_id"} & props(drawn["local"])
    assert "backend_python" in props(drawn["local"])


def test_a_server_shows_its_address_token_and_time_out_and_the_status_names_it(drawn):
    assert {"server_url", "server_token", "remote_timeout"} <= props(drawn["server"])
    assert "space_id" not in props(drawn["server"])
    assert "Ready on the server" in shown(drawn["server"])
    assert SERVER in "".join(labels(drawn["server"])), "the address, wrapped after a slash"


def test_offline_a_server_elsewhere_is_said_to_be_out_of_reach(drawn):
    assert "Online access is off: only a server on 127.0.0.1" in labels(drawn["server_offline"])
    assert "Online access is off: only a server on 127.0.0.1" not in labels(drawn["server"])


def test_the_space_shows_its_id_and_token_and_whether_a_saved_token_exists(drawn):
    assert {"space_id", "space_token"} <= props(drawn["space_with_saved_token"])
    assert "Token saved by `hf auth login`: none found" in labels(
        drawn["space_without_saved_token"]
    )
    assert "Token saved by `hf auth login`: found" in labels(drawn["space_with_saved_token"])
    assert "Ready on the Space nvidia/PartPacker" in shown(drawn["space_with_saved_token"])
