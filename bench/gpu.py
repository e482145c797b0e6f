"""One GPU session's measurements in one process, everything written to files in `--out`.

    python bench/gpu.py --out DIR            # CUDA: full size, bf16, 50 steps, grid 384
    python bench/gpu.py --out DIR --smoke    # any machine: medium models, 1 step, grid 32

Random weights stand in for the checkpoints (bench/pipeline.py's `random_models`). The modes
run back to back on the same models (bench/pipeline.py's MODES): "official" is OUR code set to
the official app's choices (hierarchical decoder, query chunks of 8192, keys and values per
chunk, one volume after the other), not NVIDIA's code; "ours", "ours-lowmem" (each network on
the device only while it runs) and "ours-compiled" (torch.compile'd DiT; its first, compiling
job is timed apart). Writes:
  gpu_bench.json   device, dtype, torch, per mode: stage seconds, FLOPs, peak device memory,
                   parts; the attention kernel per network; official vs ours meshes compared
  jobs/<mode>/     each mode's job folder (parts.glb, parts.npz, result.json)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.spatial import cKDTree

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH)]

import pipeline as pipeline_bench  # noqa: E402  (bench/pipeline.py)

from backend.device import attention_kernels, choose_placement  # noqa: E402
from backend.export import read_npz  # noqa: E402
from backend.pipeline import ModelConfigs, versions  # noqa: E402

FULL = {"size": "full", "grid_res": 384, "steps": 50}
SMOKE = {"size": "medium", "grid_res": 32, "steps": 1}


def compare_meshes(first: Path, second: Path, grid_res: int) -> dict[str, Any]:
    """Two jobs' parts.npz: counts, and how far each one's vertices are from the other's
    nearest vertex, in grid cells (2 / grid_res)."""
    meshes = {}
    for name, path in (("first", first), ("second", second)):
        parts = read_npz(path)
        vertices = np.concatenate([np.zeros((0, 3), np.float32), *(p.vertices for p in parts)])
        meshes[name] = {
            "parts": len(parts),
            "faces": sum(len(p.faces) for p in parts),
            "vertices": vertices,
        }
    cell = 2 / grid_res
    a, b = meshes["first"]["vertices"], meshes["second"]["vertices"]
    report = {
        name: {"parts": mesh["parts"], "faces": mesh["faces"], "vertices": len(mesh["vertices"])}
        for name, mesh in meshes.items()
    }
    if len(a) and len(b):
        there, back = cKDTree(b).query(a)[0] / cell, cKDTree(a).query(b)[0] / cell
        report["nearest_vertex_cells"] = {
            "max": float(max(there.max(), back.max())),
            "mean": float((there.sum() + back.sum()) / (len(there) + len(back))),
        }
    report["identical"] = bool(
        len(a) == len(b) and np.array_equal(a, b) and report["first"] == report["second"]
    )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--smoke", action="store_true", help="medium models, 1 step, grid 32")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--modes", nargs="+", default=list(pipeline_bench.MODES), choices=pipeline_bench.MODES
    )
    args = parser.parse_args()
    run = argparse.Namespace(device=args.device, **(SMOKE if args.smoke else FULL))
    placement = choose_placement(args.device)
    jobs = args.out / "jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "run": vars(run),
        "device": placement.report(),
        "versions": versions(),
        "official_mode": "our code with the official app's choices, not NVIDIA's code",
        "modes": {},
    }

    def save() -> None:  # after every mode: a run cut short still leaves what it measured
        (args.out / "gpu_bench.json").write_text(json.dumps(report, indent=1))

    print(
        f"{run.size} models, {placement.device} {placement.dtype}, grid {run.grid_res}, "
        f"{run.steps} steps, torch {torch.__version__}",
        flush=True,
    )
    models = pipeline_bench.random_models(run.size, placement.device, placement.dtype)
    configs = ModelConfigs(models.dit.config, models.vae.config, models.dinov2.config)
    report["attention_kernels"] = attention_kernels(placement, configs.attention_head_dims())
    save()
    pipeline_bench.warm_up(models, run, jobs)
    for mode in args.modes:
        print(f"mode {mode} ...", flush=True)
        report["modes"][mode] = pipeline_bench.run_mode(mode, models, run, jobs)
        save()
    if "official" in report["modes"]:
        pipeline_bench.print_table(report["modes"])
    if {"official", "ours"} <= set(report["modes"]):
        report["official_vs_ours_meshes"] = compare_meshes(
            jobs / "official" / "parts.npz", jobs / "ours" / "parts.npz", run.grid_res
        )
        print("official vs ours meshes:", json.dumps(report["official_vs_ours_meshes"]))
    save()


if __name__ == "__main__":
    main()
