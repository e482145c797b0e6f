"""Quitting Blender while a job runs (in_blender/quit_during_job.py) leaves no backend worker, and
says that the job was discarded: on Blender's console then, in the panel at the next start
(in_blender/after_quit.py)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from observed import drawn, messages

QUIT_TIMEOUT = 600.0


def running(pid: int) -> bool:
    """A process that exists and is not a zombie (ended, waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def processes_mentioning(text: str) -> list[int]:
    """Running processes whose command line contains `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            mentions = entry.name.isdigit() and text.encode() in (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if mentions and running(int(entry.name)) and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def quit_run(blender_user, default_scene, scenario_settings) -> Iterator[tuple[int, dict]]:
    code, seen = blender_user.run_scenario(
        "quit_during_job", default_scene, scenario_settings, QUIT_TIMEOUT
    )
    yield code, seen
    for pid in seen.get("workers_at_quit", []):
        if running(pid):  # the test has failed; leave nothing behind
            os.kill(pid, signal.SIGKILL)


def test_quitting_during_a_job_leaves_no_worker(quit_run, tiny_weights):
    code, seen = quit_run
    assert seen["error"] is None, seen["error"]
    assert code == 0, "Blender quit normally"
    assert seen["busy_at_quit"] is True, "a job was running when Blender quit"
    workers = seen["workers_at_quit"]
    assert len(workers) == 1, workers
    # At once: the add-on stops its worker before Blender exits (a worker left to notice the end
    # of its input by itself runs on for seconds).
    assert not [pid for pid in workers if running(pid)], "the worker outlived Blender"
    assert processes_mentioning(str(tiny_weights)) == [], "no other process uses the weights"


def test_the_panel_showed_the_job_when_blender_quit(quit_run, blender_user):
    _code, seen = quit_run
    assert "quitting" in seen["checkpoints"], seen["error"]
    items = seen["checkpoints"]["quitting"]["panels"]["PARTPACKER_PT_main"]["items"]
    assert any("Sampling" in (item["text"] or "") for item in items if item["call"] == "progress")
    assert (blender_user.folder / "quit_during_job" / "quitting.png").is_file()


@pytest.fixture(scope="module")
def next_start(quit_run, blender_user, default_scene, scenario_settings) -> dict:
    code, seen = blender_user.run_scenario("after_quit", default_scene, scenario_settings, 300)
    assert seen["error"] is None, seen["error"]
    assert code == 0
    return seen


def test_quitting_during_a_job_says_on_the_console_that_it_was_discarded(quit_run, blender_user):
    log = (blender_user.folder / "quit_during_job" / "blender.log").read_text(errors="replace")
    (line,) = [line for line in log.splitlines() if line.startswith("PartPacker stopped")]
    assert "generate job (robot)" in line and "discarded" in line


def test_the_next_start_tells_in_the_panel_that_the_job_was_discarded(next_start):
    told = messages(drawn(next_start["checkpoints"]["started"]))
    assert "Last time, PartPacker stopped" in told.get("INFO", ""), told
    assert "generate job (robot)" in told["INFO"] and "discarded" in told["INFO"]
