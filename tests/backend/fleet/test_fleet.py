"""The fleet for real: a local Ray cluster, Ray Serve, two CPU replicas of the tiny weights
(conftest.py), jobs sent as the web front end and `batch` send them. Replicas are killed with
SIGKILL from inside a job, as a machine going away would end them, or stopped with SIGSTOP, as a
stuck GPU would leave them.

Marked slow: the session's cluster takes about 30 s to start here, the module about 1.5 minutes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ray import serve

from backend.errors import BadInputError, Cancelled, DeviceOutOfMemoryError, WeightsError
from backend.export import read_npz
from backend.fleet.cluster import Fleet, FleetOptions, replica_deployment, start_fleet
from backend.fleet.runner import FleetResult, FleetRunner, ReplicaLost
from backend.params import GenerationParams
from backend.pipeline import PartPackerPipeline, PipelineSettings, Progress

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
ROBOT = REPO / "examples" / "robot.png"
QUICK = GenerationParams(steps=3, grid_res=32, seed=7, randomize_seed=False)
MEDIUM = GenerationParams(steps=30, grid_res=48, seed=7, randomize_seed=False)
"""About 2 s here: two such jobs started together run at the same time."""
LONG = GenerationParams(steps=100, grid_res=64, seed=7, randomize_seed=False)
"""About 6 s here: long enough to be cancelled midway, or to keep a replica busy."""
LIVENESS_S = 120.0
"""Far beyond any job here: a thread still running after it is a client waiting forever."""


def in_thread(work: Callable[[], Any]) -> Callable[[], Any]:
    """Run `work` in a thread; the returned function joins it and gives its result or error."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = work()
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join() -> Any:
        thread.join(LIVENESS_S)
        assert not thread.is_alive(), "the client is still waiting"
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]

    return join


def test_jobs_from_two_clients_at_once_both_finish_on_different_replicas(
    runner: FleetRunner, tmp_path: Path
) -> None:
    started = threading.Barrier(2, timeout=LIVENESS_S)

    def client(name: str) -> FleetResult:
        # each waits for the other's job to start: both run at the same time
        return runner.generate(
            ROBOT, tmp_path / name, MEDIUM, on_replica=lambda replica: started.wait()
        )

    first, second = in_thread(lambda: client("first")), in_thread(lambda: client("second"))
    results = [first(), second()]
    assert results[0].replica.replica_id != results[1].replica.replica_id
    assert results[0].replica.pid != results[1].replica.pid
    for result in results:
        assert result.attempts == 1
        assert len(read_npz(result.npz)) == len(result.parts) >= 1
        record = json.loads(result.result_json.read_text())
        assert record["replica"]["pid"] == result.replica.pid
        assert record["image"] == str(ROBOT)


def test_a_job_on_the_fleet_shows_the_stages_and_makes_the_parts_of_the_single_server(
    runner: FleetRunner, tiny_pipeline: PartPackerPipeline, tmp_path: Path
) -> None:
    tiny_pipeline.load()  # as the replicas have: no load stage
    local_progress: list[Progress] = []
    local = tiny_pipeline.generate(ROBOT, tmp_path / "local", QUICK, local_progress.append)
    fleet_progress: list[Progress] = []
    remote = runner.generate(ROBOT, tmp_path / "fleet", QUICK, fleet_progress.append)
    assert fleet_progress == local_progress
    assert sorted(path.name for path in remote.output_dir.iterdir()) == sorted(
        path.name for path in local.output_dir.iterdir()
    )
    assert remote.seed == local.seed and remote.parts == local.parts
    for ours, theirs in zip(read_npz(remote.npz), read_npz(local.npz), strict=True):
        np.testing.assert_allclose(ours.vertices, theirs.vertices, atol=1e-5)
        np.testing.assert_array_equal(ours.faces, theirs.faces)
    assert remote.preview.read_bytes() == local.preview.read_bytes()


def kill_at_first_sample_step(replicas: list[Any], killed: list[int]) -> Callable[[Progress], None]:
    def on_progress(progress: Progress) -> None:
        if progress.stage == "sample" and len(killed) < len(replicas):
            killed.append(replicas[-1].pid)
            os.kill(replicas[-1].pid, signal.SIGKILL)

    return on_progress


def test_a_replica_killed_mid_job_hands_the_job_to_another_replica(
    runner: FleetRunner, tmp_path: Path
) -> None:
    replicas: list[Any] = []
    killed: list[int] = []
    on_progress = kill_at_first_sample_step(replicas, killed)
    once = {"on_replica": lambda replica: replicas.append(replica) if not killed else None}
    result = in_thread(
        lambda: runner.generate(ROBOT, tmp_path / "job", QUICK, on_progress, **once)
    )()
    assert len(killed) == 1
    assert result.attempts == 2 and result.replica.pid != killed[0]
    assert result.seed == QUICK.seed
    assert len(read_npz(result.npz)) == len(result.parts) >= 1
    assert json.loads(result.result_json.read_text())["attempts"] == 2


def test_a_job_whose_replica_dies_twice_ends_with_a_clear_error(
    runner: FleetRunner, tmp_path: Path
) -> None:
    replicas: list[Any] = []
    killed: list[int] = []
    on_progress = kill_at_first_sample_step(replicas, killed)
    wait = in_thread(
        lambda: runner.generate(
            ROBOT, tmp_path / "job", QUICK, on_progress, on_replica=replicas.append
        )
    )
    with pytest.raises(ReplicaLost) as caught:
        wait()
    assert len(set(killed)) == 2, "two attempts, on two replicas"
    assert "went away" in caught.value.message and str(killed[1]) in caught.value.message
    assert "ray status" in caught.value.hint
    assert not (tmp_path / "job").exists(), "a lost job leaves no half folder"


def test_a_replica_that_hangs_mid_job_is_given_up_and_the_job_runs_on_another(
    runner: FleetRunner, fleet: Fleet, tiny_settings: PipelineSettings, tmp_path: Path
) -> None:
    impatient = FleetRunner(fleet, tiny_settings, stall_s=3.0)
    replicas: list[Any] = []
    stopped: list[int] = []

    def stop_at_first_sample_step(progress: Progress) -> None:
        if progress.stage == "sample" and not stopped:
            stopped.append(replicas[0].pid)
            os.kill(replicas[0].pid, signal.SIGSTOP)  # alive, but silent: as a stuck GPU

    try:
        result = in_thread(
            lambda: impatient.generate(
                ROBOT, tmp_path / "job", QUICK, stop_at_first_sample_step, None, replicas.append
            )
        )()
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
    assert len(stopped) == 1 and len(replicas) == 2
    assert result.attempts == 2 and result.replica.pid != stopped[0]
    assert len(read_npz(result.npz)) == len(result.parts) >= 1


def test_cancel_mid_job_ends_it_as_cancelled_and_its_replica_takes_the_next_job(
    runner: FleetRunner, tmp_path: Path
) -> None:
    cancel = threading.Event()
    replicas: list[Any] = []
    stages: list[str] = []

    def on_progress(progress: Progress) -> None:
        stages.append(progress.stage)
        if progress.stage == "sample" and progress.step >= 2:
            cancel.set()

    wait = in_thread(
        lambda: runner.generate(
            ROBOT, tmp_path / "cancelled", LONG, on_progress, cancel.is_set, replicas.append
        )
    )
    with pytest.raises(Cancelled):
        wait()
    assert "decode" not in stages, "cancelled within the sampling"
    assert not (tmp_path / "cancelled").exists()
    # two jobs at once take both replicas, the one that was cancelled among them
    jobs = [
        in_thread(lambda name=name: runner.generate(ROBOT, tmp_path / name, QUICK))
        for name in ("a", "b")
    ]
    used = {job().replica.replica_id for job in jobs}
    assert replicas[0].replica_id in used


def test_a_job_cancelled_while_it_waits_for_a_replica_never_runs(
    runner: FleetRunner, tmp_path: Path
) -> None:
    busy, release = threading.Barrier(3, timeout=LIVENESS_S), threading.Event()
    blockers = [
        in_thread(
            lambda name=name: runner.generate(
                ROBOT,
                tmp_path / name,
                LONG,
                should_cancel=release.is_set,
                on_replica=lambda replica: busy.wait(),
            )
        )
        for name in ("a", "b")
    ]
    busy.wait()  # both replicas are running a job
    cancel = threading.Event()
    started: list[Any] = []
    waiting = in_thread(
        lambda: runner.generate(
            ROBOT,
            tmp_path / "queued",
            QUICK,
            should_cancel=cancel.is_set,
            on_replica=started.append,
        )
    )
    cancel.set()
    with pytest.raises(Cancelled):
        waiting()
    assert started == []
    release.set()
    for blocker in blockers:
        with pytest.raises(Cancelled):
            blocker()


def test_an_image_that_cannot_be_read_fails_before_it_takes_a_replica(
    runner: FleetRunner, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG but not really")
    started: list[Any] = []
    with pytest.raises(BadInputError) as caught:
        runner.generate(broken, tmp_path / "job", QUICK, on_replica=started.append)
    assert "broken.png" in caught.value.message and caught.value.exit_code == 2
    assert started == []


def test_out_of_memory_in_a_replica_is_reported_as_the_single_server_reports_it(
    fleet: Fleet, tiny_settings: PipelineSettings, tmp_path: Path
) -> None:
    helpers = str(Path(__file__).parent)
    options = {"num_cpus": 1, "runtime_env": {"env_vars": {"PYTHONPATH": helpers}}}
    from exhausted_replica import ExhaustedReplica

    deployment = replica_deployment(options, {"num_replicas": 1})
    application = deployment.options(func_or_class=ExhaustedReplica).bind(tiny_settings)
    handle = serve.run(application, name="exhausted", route_prefix=None)
    try:
        runner = FleetRunner(Fleet(handle, 1), tiny_settings)
        with pytest.raises(DeviceOutOfMemoryError) as caught:
            runner.generate(ROBOT, tmp_path / "a", QUICK)
        assert caught.value.exit_code == 4
        assert "ran out of memory" in caught.value.message
        assert "grid resolution (now 32)" in caught.value.hint
        assert not (tmp_path / "a").exists()
        assert read_npz(runner.generate(ROBOT, tmp_path / "b", QUICK).npz), "the replica goes on"
    finally:
        serve.delete("exhausted")


def test_replicas_that_cannot_start_report_their_pipeline_s_error(
    fleet: Fleet, tiny_settings: PipelineSettings, tmp_path: Path
) -> None:
    missing = dataclasses.replace(tiny_settings, weights_dir=tmp_path / "no-weights")
    options = FleetOptions(replicas=1, app_name="no-weights")
    with pytest.raises(WeightsError) as caught:
        start_fleet(missing, options)
    assert caught.value.exit_code == 3
    assert f"weights folder {tmp_path / 'no-weights'} does not exist" in caught.value.message
    assert "no-weights" not in serve.status().applications, "nothing left on the cluster"
