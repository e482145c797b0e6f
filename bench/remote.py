"""Remote generation from Blender against local generation: the same tiny job, in the bpy module.

    .venv/blender/bin/python bench/remote.py              # 3 warm runs of each, 4 steps
    .venv/blender/bin/python bench/remote.py --runs 5 --steps 8

Local: the add-on's backend worker (`python -m backend serve`) on this computer. Remote: the
add-on's Gradio client talking to `python -m backend web` on 127.0.0.1 (with a token), so the
difference is what going through a server costs: upload, /process_image, the queue, progress
events over HTTP, the GLB's download and reading a GLB instead of parts.npz. Both use tiny random
weights (tests/tiny_weights.py) on the CPU and decode at grid 32 (the server's --grid-res-cap;
the request says 256, the Space's smallest), the same image, seed and steps; the table shows the
GLB sizes so that one can see the two made the same thing. Because the job itself can take
different times in the two processes on a loaded machine, the table also gives the remote run's
time outside the server's own /process_3d time (from the job's result.json): what the remote path
adds, measured on the same run.

Cold start: from starting each backend to its first result in the scene (the worker starts with
the first job; the server is started by hand, so its time to the address line, models loaded,
is given too). Warm runs take turns, local then remote, after the cold ones.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="partpacker-bench-user-")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "blender"))

import bpy  # noqa: E402  (after BLENDER_USER_RESOURCES)
from addon_setup import addon_preferences, disable_addon, enable_addon  # noqa: E402
from remote_servers import REMBG_MODEL, TOKEN, start_web_server  # noqa: E402

BACKEND_PYTHON = Path(
    os.environ.get("PARTPACKER_BACKEND_PYTHON", ROOT / ".venv/backend/bin/python")
)
IMAGE = ROOT / "examples" / "robot.png"


def prepare_files(folder: Path) -> tuple[Path, Path]:
    weights, rembg = folder / "weights", folder / "segmenter.onnx"
    run = [str(BACKEND_PYTHON)]
    subprocess.run([*run, "tests/tiny_weights.py", str(weights)], cwd=ROOT, check=True)
    subprocess.run([*run, "-c", REMBG_MODEL, str(rembg)], cwd=ROOT, check=True)
    return weights, rembg


def generate(addon, **params) -> tuple[float, Path]:
    """One generation as the panel runs it: seconds until its parts are in the scene."""
    session = addon.session.current()
    started = time.perf_counter()
    task = addon.generation.start_generation(bpy.context, {"image_path": str(IMAGE), **params})
    while session.task is task:
        session.tick()
        time.sleep(0.002)
    seconds = time.perf_counter() - started
    assert task.error is None, task.error
    folder = Path(task.imported.root["partpacker"]["job_folder"])
    return seconds, folder


def glb_bytes(folder: Path) -> int:
    return (folder / "parts.glb").stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="partpacker-bench-"))
    weights, rembg = prepare_files(folder)
    os.environ["PARTPACKER_MODEL_CONFIG"] = str(weights / "model_config.json")
    addon = enable_addon()
    prefs = addon_preferences()
    prefs.backend_python, prefs.device = str(BACKEND_PYTHON), "cpu"
    prefs.weights_source, prefs.weights_dir = "FOLDER", str(weights)
    job = {"steps": args.steps, "seed": 3, "randomize_seed": False}
    local = {**job, "grid_res": 32}
    remote = {**job, "grid_res": 256}

    prefs.backend_kind = "LOCAL"
    local_cold, local_folder = generate(addon, **local)
    started = time.perf_counter()
    server = start_web_server(BACKEND_PYTHON, weights, rembg)
    server_ready = time.perf_counter() - started
    prefs.backend_kind, prefs.server_url, prefs.server_token = "SERVER", server.url, TOKEN
    remote_cold, remote_folder = generate(addon, **remote)
    remote_cold += server_ready
    try:
        times: dict[str, list[float]] = {"local": [], "remote": []}
        inside: list[float] = []
        around: list[float] = []
        for _ in range(args.runs):
            prefs.backend_kind = "LOCAL"
            times["local"].append(generate(addon, **local)[0])
            prefs.backend_kind = "SERVER"
            seconds, remote_folder = generate(addon, **remote)
            times["remote"].append(seconds)
            timings = json.loads((remote_folder / "result.json").read_text())["timings"]
            inside.append(timings["server"])
            around.append(seconds - timings["server"])
    finally:
        server.stop()
        addon.session.current().shutdown()
        disable_addon()
    local_s, remote_s = (statistics.median(times[k]) for k in ("local", "remote"))
    print(f"\n{args.runs} warm runs each, {args.steps} steps, grid 32, tiny weights on the CPU\n")
    print("| | local worker | remote (server on 127.0.0.1) |")
    print("| --- | --- | --- |")
    print(f"| generation, median of {args.runs} (s) | {local_s:.2f} | {remote_s:.2f} |")
    print(f"| all runs (s) | {fmt(times['local'])} | {fmt(times['remote'])} |")
    print(
        f"| the server's own time for /process_3d, median (s) | | {statistics.median(inside):.2f} |"
    )
    print(
        "| remote: all but the server's /process_3d (upload, /process_image, queue, download, "
        f"import), median (s) | | {statistics.median(around):.2f} |"
    )
    print(f"| parts.glb (bytes) | {glb_bytes(local_folder)} | {glb_bytes(remote_folder)} |")
    print(f"| cold: start to first result (s) | {local_cold:.2f} | {remote_cold:.2f} |")
    print(f"| cold: server start to its address line (s) | | {server_ready:.2f} |")
    print(
        f"\nremote overhead: {remote_s - local_s:+.2f} s per generation ({remote_s / local_s:.2f}x)"
    )


def fmt(values: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values)


if __name__ == "__main__":
    main()
