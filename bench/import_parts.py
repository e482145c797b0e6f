"""Importing 100 parts / ~1M triangles into Blender: our importer vs Blender's glTF importer vs
from_pydata. Runs with the Blender environment's Python (the bpy module):

    .venv/blender/bin/python bench/import_parts.py [--parts 100] [--repeats 3]

Each method builds the same objects from scratch in an empty file; the best of `repeats` runs
is reported. The GLB is the scene our importer made, written by Blender's own glTF exporter.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from partpacker_blender.importer import gltf_to_blender, import_parts


def uv_sphere(rings: int, segments: int) -> tuple[np.ndarray, np.ndarray]:
    """A closed unit sphere, counter-clockwise outward: 2 * segments * (rings - 1) triangles."""
    theta = np.linspace(0, np.pi, rings + 1)[1:-1]
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    ring = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1).reshape(-1, 3)
    vertices = np.vstack([[0, 0, 1], ring, [0, 0, -1]])
    index = lambda r, s: 1 + r * segments + s % segments  # noqa: E731
    s = np.arange(segments)
    bottom = len(vertices) - 1
    faces = [np.stack([np.zeros_like(s), index(0, s), index(0, s + 1)], 1)]
    for r in range(rings - 2):
        a, b, c, d = index(r, s), index(r, s + 1), index(r + 1, s), index(r + 1, s + 1)
        faces += [np.stack([a, c, d], 1), np.stack([a, d, b], 1)]
    faces.append(
        np.stack([np.full_like(s, bottom), index(rings - 2, s + 1), index(rings - 2, s)], 1)
    )
    return vertices.astype(np.float32), np.concatenate(faces).astype(np.int32)


def write_parts(path: Path, parts: int, rng: np.random.Generator) -> tuple[int, int]:
    sphere_vertices, sphere_faces = uv_sphere(50, 100)
    vertices = [
        sphere_vertices * rng.uniform(0.02, 0.15) + rng.uniform(-0.8, 0.8, 3) for _ in range(parts)
    ]
    np.savez(
        path,
        vertices=np.concatenate(vertices).astype(np.float32),
        faces=np.tile(sphere_faces, (parts, 1)),
        vertex_offsets=np.arange(parts + 1, dtype=np.int64) * len(sphere_vertices),
        face_offsets=np.arange(parts + 1, dtype=np.int64) * len(sphere_faces),
        colors=rng.integers(0, 256, (parts, 4), dtype=np.uint8),
        volumes=(np.arange(parts) % 2).astype(np.int32),
        names=np.array([f"part_{i:03d}" for i in range(parts)]),
    )
    return parts * len(sphere_vertices), parts * len(sphere_faces)


def ours(npz: Path) -> None:
    import_parts(npz, bpy.context.scene, stem="bench", seed=0)


def from_pydata(npz: Path) -> None:
    """The common add-on way: lists into Mesh.from_pydata, one object and material per part."""
    with np.load(npz) as arrays:
        vertices, faces = gltf_to_blender(arrays["vertices"]), arrays["faces"]
        v_offsets, f_offsets = arrays["vertex_offsets"], arrays["face_offsets"]
        names = arrays["names"]
    collection = bpy.data.collections.new("bench")
    bpy.context.scene.collection.children.link(collection)
    for i, name in enumerate(names):
        mesh = bpy.data.meshes.new(str(name))
        mesh.from_pydata(
            vertices[v_offsets[i] : v_offsets[i + 1]].tolist(),
            [],
            faces[f_offsets[i] : f_offsets[i + 1]].tolist(),
        )
        mesh.materials.append(bpy.data.materials.new(str(name)))
        collection.objects.link(bpy.data.objects.new(str(name), mesh))


def gltf_importer(glb: Path) -> None:
    bpy.ops.import_scene.gltf(filepath=str(glb))


def export_glb(npz: Path, glb: Path) -> None:
    bpy.ops.wm.read_homefile(use_empty=True)
    ours(npz)
    bpy.ops.export_scene.gltf(filepath=str(glb), export_format="GLB")


def best_time(run: Callable[[Path], None], source: Path, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        bpy.ops.wm.read_homefile(use_empty=True)
        start = time.perf_counter()
        run(source)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="partpacker-bench-"))
    npz, glb = folder / "parts.npz", folder / "parts.glb"
    vertex_count, face_count = write_parts(npz, args.parts, np.random.default_rng(0))
    export_glb(npz, glb)
    print(
        f"{args.parts} parts, {vertex_count:,} vertices, {face_count:,} triangles; "
        f"best of {args.repeats}; Blender {bpy.app.version_string}"
    )
    results = {
        "ours (parts.npz, attribute foreach_set)": best_time(ours, npz, args.repeats),
        "Blender glTF importer (GLB)": best_time(gltf_importer, glb, args.repeats),
        "from_pydata (lists)": best_time(from_pydata, npz, args.repeats),
    }
    baseline = next(iter(results.values()))
    print(f"| {'method':<42} | seconds | vs ours |")
    print(f"| {'-' * 42} | ------- | ------- |")
    for name, seconds in results.items():
        print(f"| {name:<42} | {seconds:7.3f} | {seconds / baseline:6.1f}x |")
    bpy.ops.wm.read_homefile(use_empty=True)


if __name__ == "__main__":
    main()
