"""Cancel always ends the job, even when the worker is stuck (in_blender/cancel_stuck_worker.py),
and the panel shows the end by itself; while the job runs only the sidebar redraws; without a
backend the panel's button opens the add-on's preferences."""

from __future__ import annotations

import contextlib
import os
import signal

import pytest
from observed import button, drawn, usable

CANCEL_TIMEOUT = 600.0


@pytest.fixture(scope="module")
def seen(blender_user, default_scene, scenario_settings) -> dict:
    code, observations = blender_user.run_scenario(
        "cancel_stuck_worker", default_scene, scenario_settings, CANCEL_TIMEOUT
    )
    for pid in observations.get("stuck_workers", []):
        with contextlib.suppress(ProcessLookupError):  # failed: leave nothing frozen behind
            os.kill(pid, signal.SIGKILL)
    assert observations["error"] is None, observations["error"]
    assert code == 0
    return observations


def test_without_a_backend_the_panel_offers_the_addons_preferences(seen):
    items = drawn(seen["checkpoints"]["not_set_up"])
    assert usable(button(items, "partpacker.show_preferences"))
    assert not button(items, "partpacker.generate")["poll"], "Generate cannot run yet"
    assert not button(items, "partpacker.prepare")["poll"]
    assert seen["show_preferences"]["result"] == ["FINISHED"]
    assert seen["preferences_opened_at"]["section"] == "ADDONS"
    assert "PartPacker" in seen["preferences_opened_at"]["search"]


def test_cancel_with_a_stuck_worker_ends_the_job_as_cancelled_and_stops_the_worker(seen):
    assert seen["cancel"]["result"] == ["FINISHED"]
    assert seen["stuck_workers"], "a worker was frozen"
    assert seen["checkpoints"]["cancelling"]["state"]["busy"] is True
    ended = seen["checkpoints"]["cancelled_as_left"]
    assert ended["state"] == {"busy": False, "error": None}, "cancelled, not a failure"
    assert seen["stuck_still_running"] == []
    assert ended["workers"] == []
    print(f"cancel to ended with a stuck worker: {seen['cancel_to_ended_s']} s")


def test_the_panel_shows_the_cancelled_job_ended_without_being_touched(seen):
    items = drawn(seen["checkpoints"]["cancelled_as_left"])
    assert usable(button(items, "partpacker.generate"))
    assert button(items, "partpacker.cancel") is None
    assert not [i for i in items if i["call"] == "progress"]
    assert not [i for i in items if i["call"] == "label" and i["icon"] == "ERROR"]


def test_while_a_job_runs_the_sidebar_redraws_and_the_viewport_does_not(seen):
    draws = seen["draws_while_running"]
    assert draws["busy_throughout"]
    assert draws["sidebar"] >= 5, draws
    assert draws["viewport"] * 3 < draws["sidebar"], draws
