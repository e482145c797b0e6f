"""Generating on a server from a real Blender window (in_blender/remote_generate.py): a real
`python -m backend web` with tiny weights and a token on 127.0.0.1, Blender's own event loop
draining the client's thread. Expected values come from the scenario's requests and the server's
job folders."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import BACKEND_PYTHON
from observed import button, drawn, results, usable
from real_blender import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tests" / "blender"))
from remote_servers import REMBG_MODEL, TOKEN, Server, start_web_server

REMOTE_TIMEOUT = 600.0


@pytest.fixture(scope="module")
def server(output_folder: Path, tiny_weights: Path) -> Iterator[Server]:
    rembg = output_folder / "segmenter.onnx"
    subprocess.run([str(BACKEND_PYTHON), "-c", REMBG_MODEL, str(rembg)], cwd=REPO_ROOT, check=True)
    started = start_web_server(BACKEND_PYTHON, tiny_weights, rembg)
    yield started
    started.stop()


@pytest.fixture(scope="module")
def seen(blender_user, default_scene, scenario_settings, server) -> dict:
    settings = {**scenario_settings, "server_url": server.url, "server_token": TOKEN}
    code, observations = blender_user.run_scenario(
        "remote_generate", default_scene, settings, REMOTE_TIMEOUT
    )
    assert observations["error"] is None, observations["error"]
    assert code == 0
    return observations


def test_prepare_shows_the_servers_segmentation(seen):
    assert seen["prepare"]["result"] == ["FINISHED"]
    assert seen["checkpoints"]["prepared"]["state"]["error"] is None


def test_the_panel_follows_the_servers_stages_with_cancel_offered(seen):
    main = [h["items"] for h in seen["panel_history"] if h["panel"] == "PARTPACKER_PT_main"]
    sampling = [items for items in main if any("Sampling" in (x["text"] or "") for x in items)]
    assert sampling, "a draw showed the server's sampler progress"
    assert all(usable(button(items, "partpacker.cancel")) for items in sampling)
    # The short remote-only stages (connecting, uploading, the queue) come and go between two
    # redraws here; test_remote.py sees them in the bpy module.


def test_the_result_is_the_servers_parts_with_where_they_came_from(seen, server):
    checkpoint = seen["checkpoints"]["generated"]
    assert checkpoint["state"]["error"] is None
    assert set(results(checkpoint)) == {"robot_5"}
    objects = checkpoint["scene"]["objects"]
    metadata = objects["robot_5"]["metadata"]
    assert (metadata["backend"], metadata["server"], metadata["seed"]) == ("Server", server.url, 5)
    jobs = [p for p in (server.work_dir / "jobs").iterdir() if (p / "parts.npz").is_file()]
    with np.load(jobs[0] / "parts.npz") as made:
        names = made["names"].tolist()
    children = sorted(name for name, obj in objects.items() if obj["parent"] == "robot_5")
    assert children == sorted(f"robot_5_{name}" for name in names)
    assert seen["screenshots"] == ["remote_result.png", "remote_sampling.png"]


def test_cancel_on_a_server_stops_at_once_and_reports_no_error(seen, server):
    assert seen["cancel"]["result"] == ["FINISHED"]
    checkpoint = seen["checkpoints"]["cancelled"]
    assert checkpoint["state"]["error"] is None
    assert "robot_6" not in results(checkpoint)
    assert server.log_lines("cancelled by its client", timeout=60)
    assert usable(button(drawn(checkpoint), "partpacker.generate"))
