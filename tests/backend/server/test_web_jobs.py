"""Jobs on the web server: one at a time, a bounded queue, and a cancel (or a client that goes
away) that stops the pipeline itself, not only the wait. Real server, real gradio_client."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, TOKEN, ServerProcess
from gradio_client import Client, handle_file
from gradio_client.client import Job
from gradio_client.utils import Status

LONG = {"num_steps": 100, "cfg_scale": 7, "grid_res": 256, "seed": 1}
QUICK = {"num_steps": 2, "cfg_scale": 7, "grid_res": 256, "seed": 2}
FIXED = {"simplify_mesh": False, "target_num_faces": 100000}
TIMEOUT = 120.0
LEAVING_CLIENT = """
import sys
from gradio_client import Client, handle_file

client = Client(sys.argv[1], verbose=False)
job = client.submit(handle_file(sys.argv[2]), 100, 7, 256, 1, False, 100000, api_name="/process_3d")
while not any(unit.desc == "Sampling" for unit in job.status().progress_data or []):
    pass
print("sampling", flush=True)
sys.stdin.read()
"""


def submit(client: Client, image: Path, values: dict) -> Job:
    return client.submit(handle_file(str(image)), **values, **FIXED, api_name="/process_3d")


def wait_for_stage(job: Job, stage: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not any(unit.desc == stage for unit in job.status().progress_data or []):
        assert not job.done(), f"the job ended before {stage}: {job.status()}"
        assert time.monotonic() < deadline, f"no {stage} within {TIMEOUT} s"
        time.sleep(0.02)


def started_job(server: ServerProcess, before: int) -> str:
    """The folder name of the job that started after `before` lines of the log."""
    lines = server.log_lines(r"job \S+: started", timeout=TIMEOUT)[before:]
    assert lines, "\n".join(server.stderr_lines[-20:])
    return lines[0].split("job ")[1].split(":")[0]


def assert_stopped_midway(server: ServerProcess, name: str) -> None:
    """Cancelled while sampling: the job's folder stays as the server made it, empty (not a
    lone preview.png), and the hidden folder its files were written in is gone."""
    assert server.log_lines(rf"job {name}: cancelled", timeout=TIMEOUT), server.stderr_lines[-20:]
    jobs = server.work_dir / "jobs"
    assert list((jobs / name).iterdir()) == []
    assert not [path for path in jobs.iterdir() if path.name.startswith(f".{name}.")]


def test_a_cancelled_job_stops_in_the_pipeline_and_the_next_one_runs(
    open_server: ServerProcess, rgba_object: Path, tmp_path: Path
) -> None:
    client = Client(open_server.url, download_files=tmp_path)
    before = len(open_server.log_lines(r"job \S+: started"))
    job = submit(client, rgba_object, LONG)
    wait_for_stage(job, "Sampling")
    name = started_job(open_server, before)
    preview = client.predict(handle_file(str(rgba_object)), api_name="/process_image")
    assert preview.endswith(".png") and not job.done(), "a preview does not wait for a generation"
    job.cancel()
    # One job at a time, and a cancel waits for the pipeline to stop: had it not stopped, this
    # one would start only after it had written its parts.glb.
    assert submit(client, rgba_object, QUICK).result(timeout=TIMEOUT).endswith(".glb")
    assert_stopped_midway(open_server, name)


def test_a_client_that_goes_away_cancels_its_job(
    open_server: ServerProcess, rgba_object: Path, tmp_path: Path
) -> None:
    before = len(open_server.log_lines(r"job \S+: started"))
    leaving = subprocess.Popen(
        [sys.executable, "-c", LEAVING_CLIENT, open_server.url, str(rgba_object)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert leaving.stdout is not None and leaving.stdout.readline().strip() == "sampling"
        name = started_job(open_server, before)
    finally:
        leaving.send_signal(signal.SIGKILL)
        leaving.wait()
    assert_stopped_midway(open_server, name)
    client = Client(open_server.url, download_files=tmp_path)
    assert submit(client, rgba_object, QUICK).result(timeout=TIMEOUT).endswith(".glb")


def test_jobs_wait_their_turn_and_a_full_queue_refuses_at_once(
    token_server: ServerProcess, rgba_object: Path, tmp_path: Path
) -> None:
    """The token server holds one waiting job at most (--max-queue 1)."""
    client = Client(token_server.url, token=TOKEN, download_files=tmp_path)
    running = submit(client, rgba_object, LONG)
    wait_for_stage(running, "Sampling")
    waiting = submit(client, rgba_object, QUICK)
    deadline = time.monotonic() + TIMEOUT
    while waiting.status().code != Status.IN_QUEUE:
        assert time.monotonic() < deadline, waiting.status()
        time.sleep(0.02)
    refused = submit(client, rgba_object, QUICK)
    with pytest.raises(Exception, match="Queue is full"):
        refused.result(timeout=TIMEOUT)
    assert waiting.status().code == Status.IN_QUEUE, "still waiting behind the running job"
    running.cancel()
    assert waiting.result(timeout=TIMEOUT).endswith(".glb")
