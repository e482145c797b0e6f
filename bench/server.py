"""Web server benchmark: its cold start, and one tiny job through it against the same job here.

    python bench/server.py                       # grid 256 (the Space's smallest), 8 steps
    python bench/server.py --grid-cap 64 --runs 5

Tiny random weights (tests/tiny_weights.py) and an RGBA image (no background removal). The
server is `python -m backend web` on 127.0.0.1, spoken to with gradio_client; the baseline is
the same job (image, seed, steps, grid) on a PartPackerPipeline in this process, as `generate`
runs it. Both are warm (one untimed job first) and take turns. Besides the wall times, the server's
own log gives each job's time inside it, so "what the server adds" (upload, queue, progress
events, the GLB's download) is measured on the same job, whatever the machine's load does to the
job itself. With --grid-cap N the server decodes at N (its --grid-res-cap) while the request says
256, and the local job runs at N.

Cold start is the time from starting the process to its address line (weights loaded, socket
listening) and to its first answer (GET /config); with tiny weights it is mostly imports.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from gradio_client import Client, handle_file  # noqa: E402
from tiny_weights import write_tiny_weights  # noqa: E402

from backend.params import GenerationParams  # noqa: E402
from backend.pipeline import PartPackerPipeline, PipelineSettings  # noqa: E402

SPACE_MIN_GRID = 256
SEED = 1
ROUND_TRIPS = 20
JOB_DONE = re.compile(r"job \S+: done in ([0-9.]+) s")


def rgba_image(path: Path) -> Path:
    yy, xx = np.mgrid[:300, :400]
    pixels = np.zeros((300, 400, 4), dtype=np.uint8)
    pixels[(yy - 150) ** 2 + (xx - 200) ** 2 < 110**2] = (200, 60, 40, 255)
    Image.fromarray(pixels).save(path)
    return path


class Server:
    """`python -m backend web` with its job times read from its log."""

    def __init__(self, flags: list[str]) -> None:
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "backend", "web", *flags, "--port", "0"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.job_seconds: list[float] = []
        threading.Thread(target=self._read_log, daemon=True).start()
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().split()[2]
        self.listening = time.perf_counter() - started
        while httpx.get(self.url + "config").status_code != 200:
            time.sleep(0.01)
        self.answering = time.perf_counter() - started

    def _read_log(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if found := JOB_DONE.search(line):
                self.job_seconds.append(float(found[1]))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


def interleaved(jobs: list[Callable[[], Path]], runs: int) -> list[list[tuple[float, Path]]]:
    """Each job's (seconds, output) over `runs`, run in turn (so that a change in the machine's
    load falls on all of them), after one untimed run each."""
    for job in jobs:
        job()
    results: list[list[tuple[float, Path]]] = [[] for _ in jobs]
    for _ in range(runs):
        for index, job in enumerate(jobs):
            start = time.perf_counter()
            output = job()
            results[index].append((time.perf_counter() - start, output))
    return results


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--grid-cap", type=int, default=None, help="the server's --grid-res-cap")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--runs", type=int, default=1, help="timed jobs each (after a warm-up)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    grid = args.grid_cap or SPACE_MIN_GRID
    folder = Path(tempfile.mkdtemp(prefix="bench-server-"))
    weights = write_tiny_weights(folder / "weights")
    image = rgba_image(folder / "disc.png")
    config = weights / "model_config.json"
    flags = ["--weights-dir", str(weights), "--model-config", str(config), "--device", args.device]
    if args.grid_cap:
        flags += ["--grid-res-cap", str(args.grid_cap)]

    settings = PipelineSettings(weights_dir=weights, model_config=config, device=args.device)
    pipeline = PartPackerPipeline(settings)
    params = GenerationParams(steps=args.steps, grid_res=grid, seed=SEED, randomize_seed=False)
    request = (args.steps, 7, SPACE_MIN_GRID, SEED, False, 100000)
    names = iter(range(1 << 20))

    def local() -> Path:
        return pipeline.generate(image, folder / f"local{next(names)}", params).glb

    server = Server(flags)
    try:
        client = Client(server.url, verbose=False, download_files=folder / "downloads")

        def served() -> Path:
            return Path(client.predict(handle_file(str(image)), *request, api_name="/process_3d"))

        local_runs, served_runs = interleaved([local, served], args.runs)
        round_trips = []
        for _ in range(ROUND_TRIPS):
            start = time.perf_counter()
            client.predict(False, 1, api_name="/get_random_seed")
            round_trips.append(time.perf_counter() - start)
    finally:
        server.stop()

    inside = server.job_seconds[1:]  # the warm-up job first
    added = [wall - job for (wall, _), job in zip(served_runs, inside, strict=True)]
    local_s, served_s = median([s for s, _ in local_runs]), median([s for s, _ in served_runs])
    local_glb, served_glb = local_runs[-1][1], served_runs[-1][1]
    print(
        f"tiny weights on {args.device}, {args.steps} steps, grid {grid}, {args.runs} run(s); "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(
        f"cold start: address line {server.listening:.2f} s, first answer {server.answering:.2f} s"
    )
    print(
        f"get_random_seed round trip: {median(round_trips) * 1000:.0f} ms (median of {ROUND_TRIPS})"
    )
    print(f"{'':<34}{'seconds':>10}{'GLB bytes':>12}")
    print(f"{'here, as generate runs it':<34}{local_s:>10.2f}{local_glb.stat().st_size:>12,}")
    print(f"{'through the server':<34}{served_s:>10.2f}{served_glb.stat().st_size:>12,}")
    print(f"{'  the job inside the server':<34}{median(inside):>10.2f}")
    print(f"{'  what the server adds':<34}{median(added):>10.2f}")
    print(
        f"server / here: {served_s / local_s:.2f}x; "
        f"same GLB bytes: {served_glb.read_bytes() == local_glb.read_bytes()}"
    )


if __name__ == "__main__":
    main()
