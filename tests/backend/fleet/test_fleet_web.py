"""`python -m backend web --fleet ADDRESS`: the single server's front end and API, each job on
the session's fleet (conftest.py), which the server process joins by its address as a second
machine would. Real server process, real gradio_client. Marked slow (about 40 s here)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
from gradio_client import Client, handle_file

from backend.fleet.cluster import Fleet
from backend.fleet.runner import FleetRunner

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
ROBOT = REPO / "examples" / "robot.png"
ADDRESS_LINE = re.compile(r"(http://\S+/) \(.*; files in (.+)\)$")
MEDIUM = {"num_steps": 30, "cfg_scale": 7, "grid_res": 256, "seed": 3}
LONG = {"num_steps": 100, "cfg_scale": 7, "grid_res": 256, "seed": 3}
FIXED = {"simplify_mesh": False, "target_num_faces": 100000}
TIMEOUT = 120.0
WEB_FLAGS = ["--port", "0", "--grid-res-cap", "32"]


class WebOnFleet:
    """The web server process; its first stdout line says where it listens and keeps files."""

    def __init__(self, command: list[str]) -> None:
        self.process = subprocess.Popen(
            command,
            cwd=REPO,
            env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log: list[str] = []
        threading.Thread(target=self._read_log, daemon=True).start()
        assert self.process.stdout is not None
        match = ADDRESS_LINE.search(self.process.stdout.readline().strip())
        assert match, "no address line:\n" + "\n".join(self.log)
        self.url, self.work_dir = match[1], Path(match[2])

    def _read_log(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line.rstrip("\n"))

    def job_records(self) -> list[dict]:
        return [json.loads(path.read_text()) for path in self.work_dir.glob("jobs/*/result.json")]


@pytest.fixture(scope="module")
def web(fleet: Fleet, tiny_flags: list[str]) -> Iterator[WebOnFleet]:
    fleet_flags = ["--fleet", ray.get_runtime_context().gcs_address]
    server = WebOnFleet(
        [sys.executable, "-m", "backend", "web", *tiny_flags, *fleet_flags, *WEB_FLAGS]
    )
    yield server
    server.process.terminate()
    server.process.wait(timeout=30)


def submit(client: Client, values: dict):  # type: ignore[no-untyped-def]
    return client.submit(handle_file(str(ROBOT)), **values, **FIXED, api_name="/process_3d")


def test_two_clients_of_the_web_server_get_their_parts_from_two_replicas(
    runner: FleetRunner, web: WebOnFleet, tmp_path: Path
) -> None:
    clients = [Client(web.url, download_files=tmp_path / name) for name in ("a", "b")]
    jobs = [submit(client, MEDIUM) for client in clients]
    for job in jobs:
        assert job.result(timeout=TIMEOUT).endswith(".glb")
    records = web.job_records()
    assert len(records) == 2
    assert len({record["replica"]["replica_id"] for record in records}) == 2
    assert any("already running on this cluster" in line for line in web.log)


def test_a_web_client_sees_the_stages_and_can_cancel_its_job(
    runner: FleetRunner, web: WebOnFleet, tmp_path: Path
) -> None:
    client = Client(web.url, download_files=tmp_path)
    before = len(web.job_records())
    job = submit(client, LONG)
    deadline = time.monotonic() + TIMEOUT
    while not any(unit.desc == "Sampling" for unit in job.status().progress_data or []):
        assert not job.done() and time.monotonic() < deadline, job.status()
        time.sleep(0.02)
    job.cancel()
    deadline = time.monotonic() + TIMEOUT
    while not any(re.search(r"job \S+: cancelled", line) for line in web.log):
        assert time.monotonic() < deadline, "\n".join(web.log[-20:])
        time.sleep(0.05)
    assert len(web.job_records()) == before, "the cancelled job wrote no result"
    assert submit(client, MEDIUM).result(timeout=TIMEOUT).endswith(".glb")
