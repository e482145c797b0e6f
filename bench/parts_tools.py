"""The parts tools on 100 parts / ~1M triangles: explode and export, each against what Blender
offers for the same job. Runs with the Blender environment's Python (the bpy module):

    .venv/blender/bin/python bench/parts_tools.py [--parts 100] [--repeats 3]

The parts are bench/import_parts.py's spheres, imported by our importer. Explode: adding the
slider's drivers to every part, and moving all parts (set the slider, evaluate the scene)
against the baseline of setting every part's location from Python and evaluating. Export, each
against Blender's own exporter writing the same objects: ours one STL per part against
Blender's STL exporter in batch mode (one file per object); ours one OBJ per part against
Blender's OBJ exporter (one file); ours one GLB with a node per part against Blender's glTF
exporter (one file). Best of `repeats`; "baseline / ours" above 1 means ours is faster.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="partpacker-bench-"))

import bpy
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from import_parts import write_parts  # noqa: E402

from partpacker_blender.importer import import_parts  # noqa: E402
from partpacker_blender.parts.explode import add_explode, set_explode  # noqa: E402
from partpacker_blender.parts.export import export_parts  # noqa: E402


def best_time(run: Callable[[], None], repeats: int, prepare: Callable[[], None]) -> float:
    times = []
    for _ in range(repeats):
        prepare()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def selected_parts(root: bpy.types.Object) -> None:
    for obj in bpy.context.view_layer.objects:
        obj.select_set(obj.parent == root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="partpacker-bench-"))
    npz = folder / "parts.npz"
    vertex_count, face_count = write_parts(npz, args.parts, np.random.default_rng(0))
    bpy.ops.wm.read_homefile(use_empty=True)
    result = import_parts(npz, bpy.context.scene, stem="bench", seed=0)
    root, parts = result.root, result.parts
    out = folder / "out"
    amounts = iter(np.tile([1.0, 0.0], 1000))

    def fresh_folder() -> None:
        for path in out.glob("*") if out.exists() else ():
            path.unlink()
        out.mkdir(exist_ok=True)

    def move_by_hand() -> None:
        amount = next(amounts)
        for part in parts:
            part.location = part.location * (1.0 + amount)
        bpy.context.view_layer.update()

    def move_by_slider() -> None:
        set_explode(root, next(amounts))
        bpy.context.view_layer.update()

    def blender(operator: Callable, **options) -> Callable[[], None]:
        return lambda: operator(filepath=str(out / "bench"), **options)

    explode_rows = [
        ("explode: add the drivers to every part", lambda: add_explode(root), lambda: None),
        ("explode: move every part (slider)", move_by_slider, lambda: None),
        ("  baseline: set every location (Python)", move_by_hand, lambda: None),
    ]
    stl = bpy.ops.wm.stl_export
    export_rows = [
        ("export: one STL per part (ours)", lambda: export_parts(root, out, "STL")),
        (
            "  baseline: Blender STL, batch",
            blender(stl, use_batch=True, export_selected_objects=True),
        ),
        ("export: one OBJ per part (ours)", lambda: export_parts(root, out, "OBJ")),
        (
            "  baseline: Blender OBJ, one file",
            blender(bpy.ops.wm.obj_export, export_selected_objects=True, export_materials=True),
        ),
        ("export: one GLB, a node per part (ours)", lambda: export_parts(root, out, "GLB_SCENE")),
        (
            "  baseline: Blender glTF, one GLB",
            lambda: bpy.ops.export_scene.gltf(
                filepath=str(out / "bench.glb"), export_format="GLB", use_selection=True
            ),
        ),
    ]
    results = [(name, best_time(run, args.repeats, prepare)) for name, run, prepare in explode_rows]
    selected_parts(root)
    set_explode(root, 0.5)
    results += [(name, best_time(run, args.repeats, fresh_folder)) for name, run in export_rows]
    print(
        f"{args.parts} parts, {vertex_count:,} vertices, {face_count:,} triangles; "
        f"best of {args.repeats}; Blender {bpy.app.version_string}"
    )
    print(f"| {'step':<42} | seconds | baseline / ours |")
    print(f"| {'-' * 42} | ------- | --------------- |")
    for index, (name, seconds) in enumerate(results):
        ratio = ""
        if name.startswith("  baseline"):
            ratio = f"{seconds / results[index - 1][1]:.2f}"
        print(f"| {name:<42} | {seconds:7.3f} | {ratio:>15} |")
    bpy.ops.wm.read_homefile(use_empty=True)


if __name__ == "__main__":
    main()
