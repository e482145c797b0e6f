"""Fleet benchmark: jobs on one replica against two, and one job through the fleet against the
pipeline in this process, on a local Ray cluster of CPU replicas (`--fleet local`).

    python bench/fleet.py                      # 8 jobs of tiny weights, 30 steps, grid 64
    python bench/fleet.py --jobs 16 --steps 50 --grid-res 96
    python bench/fleet.py --folder-size        # also: bytes per triangle of a job's files

Tiny random weights (tests/tiny_weights.py) and the RGBA example image (no background removal).
Each replica is one Ray CPU, which Ray gives one thread (OMP_NUM_THREADS=1), so the in-process
baseline runs with one torch thread as well: the overhead row compares the same work. The two
applications (one replica, two replicas) run side by side and are timed in turns, so that other
work on the machine weighs on both alike. Prints seconds and the ratios: jobs on one replica /
on two (throughput), one job through the fleet / in process (overhead), and how long a cancel
takes to reach the client and to free the replica. `--folder-size` adds what a job folder
weighs as it travels back: parts.glb and parts.npz of bench/postprocess.py's two synthetic
volumes at grid 384, not simplified.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from postprocess import blobs_volume, shapes_volume  # noqa: E402
from tiny_weights import write_tiny_weights  # noqa: E402

from backend.errors import Cancelled  # noqa: E402
from backend.export import write_glb, write_npz  # noqa: E402
from backend.fleet.cluster import FleetOptions, connect, start_fleet  # noqa: E402
from backend.fleet.runner import FleetRunner  # noqa: E402
from backend.meshing import MeshOptions, extract_mesh, mesh_parts  # noqa: E402
from backend.params import GenerationParams  # noqa: E402
from backend.parts import assemble_parts  # noqa: E402
from backend.pipeline import PartPackerPipeline, PipelineSettings, Progress  # noqa: E402

EXAMPLE = ROOT / "examples" / "robot.png"
REPEATS = 7
ROUNDS = 3


def timed(work: Callable[..., object], *args: object) -> float:
    start = time.perf_counter()
    work(*args)
    return time.perf_counter() - start


def fleet_runner(settings: PipelineSettings, replicas: int) -> FleetRunner:
    """A new application of `replicas` replicas."""
    options = FleetOptions(replicas=replicas, app_name=f"bench-{replicas}")
    return FleetRunner(start_fleet(settings, options), settings)


def many_jobs(runner: FleetRunner, count: int, params: GenerationParams, output: Path) -> float:
    """Seconds for `count` jobs sent at once, as `count` clients would."""

    def job(index: int) -> None:
        runner.generate(EXAMPLE, output / f"job{index}", params)

    threads = [threading.Thread(target=job, args=(index,)) for index in range(count)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def cancel_latency(
    runner: FleetRunner, params: GenerationParams, output: Path
) -> tuple[float, float]:
    """Seconds from should_cancel turning True to Cancelled here, and to the start of the next
    job's first stage (the replica free again; one replica, so the next job waits for it)."""
    cancel = threading.Event()
    flagged: list[float] = []

    def on_progress(progress: Progress) -> None:
        if progress.stage == "sample" and not flagged:
            flagged.append(time.perf_counter())
            cancel.set()

    try:
        runner.generate(EXAMPLE, output / "cancelled", params, on_progress, cancel.is_set)
        raise AssertionError("the job was not cancelled")
    except Cancelled:
        reached = time.perf_counter()
    first_stage: list[float] = []
    runner.generate(
        EXAMPLE, output / "next", params, lambda progress: first_stage.append(time.perf_counter())
    )
    return reached - flagged[0], first_stage[0] - flagged[0]


def print_folder_size(size: int = 385) -> None:
    volumes = (
        shapes_volume(size, np.random.default_rng(0)),
        blobs_volume(size, np.random.default_rng(1)),
    )
    per_volume = [
        mesh_parts(*extract_mesh(grid), volume, MeshOptions())
        for volume, grid in enumerate(volumes)
    ]
    parts = assemble_parts(per_volume)
    faces = sum(len(part.faces) for part in parts)
    with tempfile.TemporaryDirectory() as folder:
        files = [
            write_glb(parts, Path(folder) / "parts.glb"),
            write_npz(parts, Path(folder) / "parts.npz"),
        ]
        print(f"\njob folder at grid {size - 1}: {len(parts)} parts, {faces:,} triangles")
        print("| file | MB | bytes per triangle |")
        print("| --- | --- | --- |")
        for path in files:
            weight = path.stat().st_size
            print(f"| {path.name} | {weight / 1e6:.1f} | {weight / faces:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--grid-res", type=int, default=64)
    parser.add_argument("--folder-size", action="store_true", help="also weigh a job folder")
    args = parser.parse_args()
    params = GenerationParams(steps=args.steps, grid_res=args.grid_res, randomize_seed=False)
    long_job = GenerationParams(steps=100, grid_res=args.grid_res, randomize_seed=False)
    smallest = GenerationParams(steps=1, grid_res=16, randomize_seed=False)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        weights = write_tiny_weights(root / "weights")
        settings = PipelineSettings(
            weights_dir=weights, model_config=weights / "model_config.json", device="cpu"
        )
        torch.set_num_threads(1)
        local = PartPackerPipeline(settings)
        local.load()
        local.generate(EXAMPLE, root / "warm", params)
        started = time.perf_counter()
        connect("local", local_cpus=3)  # both applications at once; only busy replicas compute
        connected = time.perf_counter() - started
        runners = {replicas: fleet_runner(settings, replicas) for replicas in (1, 2)}
        for replicas, runner in runners.items():
            many_jobs(runner, replicas, params, root / f"warm{replicas}")  # every replica once
        # in turns, so that the other work on this machine weighs on both sides alike
        rounds: dict[int, list[float]] = {1: [], 2: []}
        for index in range(ROUNDS):
            for replicas, runner in runners.items():
                output = root / f"round{index}-{replicas}"
                rounds[replicas].append(many_jobs(runner, args.jobs, params, output))
        single: dict[tuple[str, str], list[float]] = {}
        for _ in range(REPEATS):
            for job, job_params in (("job", params), ("smallest", smallest)):
                for where, pipeline in (("in process", local), ("fleet", runners[1])):
                    seconds = timed(pipeline.generate, EXAMPLE, root / "single", job_params)
                    single.setdefault((job, where), []).append(seconds)
        cancels = [cancel_latency(runners[1], long_job, root) for _ in range(ROUNDS)]
    print_table(args, connected, rounds, single, cancels, (load_before, os.getloadavg()[0]))
    if args.folder_size:
        print_folder_size()


def print_table(
    args: argparse.Namespace,
    connected: float,
    rounds: dict[int, list[float]],
    single: dict[tuple[str, str], list[float]],
    cancels: list[tuple[float, float]],
    load: tuple[float, float],
) -> None:
    one, two = (statistics.median(rounds[replicas]) for replicas in (1, 2))
    reached, freed = (statistics.median(times) for times in zip(*cancels, strict=True))
    print(f"\n{os.cpu_count()} CPU cores, load average {load[0]:.1f} before, {load[1]:.1f} after")
    print(f"Ray local cluster started in {connected:.1f} s")
    print(f"jobs: tiny weights, {args.steps} steps, grid {args.grid_res}, one thread each\n")
    print("| what | seconds | ratio |")
    print("| --- | --- | --- |")
    jobs = f"{args.jobs} jobs at once"
    print(f"| {jobs}, 1 replica (median of {ROUNDS}) | {one:.2f} | 1.00x |")
    print(f"| {jobs}, 2 replicas (median of {ROUNDS}) | {two:.2f} | {one / two:.2f}x |")
    for job, label in (("job", "one job"), ("smallest", "one job of 1 step, grid 16")):
        local, fleet = (statistics.median(single[job, where]) for where in ("in process", "fleet"))
        overhead = f"{fleet / local:.2f}x ({(fleet - local) * 1000:+.0f} ms)"
        print(f"| {label} in process (median of {REPEATS}) | {local:.3f} | 1.00x |")
        print(f"| {label} through the fleet (median of {REPEATS}) | {fleet:.3f} | {overhead} |")
    print(f"| cancel: should_cancel True to Cancelled here | {reached:.3f} | |")
    print(f"| cancel: to the next job's first stage on that replica | {freed:.3f} | |")


if __name__ == "__main__":
    main()
