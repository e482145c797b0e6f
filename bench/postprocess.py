"""Post-processing benchmark: one volume's grid to a part GLB, ours against the official chain.

    python bench/postprocess.py              # 385^3 volumes, as the app's grid_res 384
    python bench/postprocess.py --size 129   # quick check

Two synthetic inside-positive float32 volumes, NaN away from the surfaces as the coarse-to-fine
decoder leaves them: "shapes" (~30 separated parts, hollow shells, boxes, tori, ...) and "blobs"
(300 small separated blobs). Each runs through
  ours      scikit-image marching cubes (PyMCubes-exact), scipy connected-components split,
            optional fast_simplification decimation, trimesh GLB (backend.meshing / export)
  official  PyMCubes -> trimesh.Trimesh (default processing) -> pymeshlab cleaning with the demo's
            thresholds (and quadric edge collapse without optimal placement when decimating)
            -> trimesh.split -> trimesh GLB
with and without decimation, and prints per-stage seconds, faces, parts kept and the ratios
official / ours. Needs the bench extra (PyMCubes, pymeshlab).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.export import to_gltf_frame, write_glb
from backend.meshing import (
    TINY_PART_FACES,
    SmallPieceThresholds,
    decimate,
    extract_mesh,
    remove_small_pieces,
    split_parts,
)
from backend.parts import PALETTE, Part, assemble_parts

Shape = Callable[[np.ndarray], np.ndarray]
"""Inside-positive distance of points [..., 3] relative to the shape's centre."""


# --- synthetic volumes ------------------------------------------------------------------------


def sphere(radius: float) -> Shape:
    return lambda p: radius - np.linalg.norm(p, axis=-1)


def shell(radius: float, thickness: float) -> Shape:
    return lambda p: thickness / 2 - np.abs(np.linalg.norm(p, axis=-1) - radius)


def box(half: np.ndarray) -> Shape:
    def distance(p: np.ndarray) -> np.ndarray:
        q = np.abs(p) - half
        return -(np.linalg.norm(np.maximum(q, 0), axis=-1) + np.minimum(q.max(axis=-1), 0))

    return distance


def hollow_box(half: np.ndarray, thickness: float) -> Shape:
    solid = box(half)
    return lambda p: thickness / 2 - np.abs(solid(p))


def torus(major: float, minor: float) -> Shape:
    return lambda p: minor - np.hypot(np.hypot(p[..., 0], p[..., 1]) - major, p[..., 2])


def cylinder(radius: float, half_height: float) -> Shape:
    return lambda p: np.minimum(
        radius - np.hypot(p[..., 0], p[..., 1]), half_height - np.abs(p[..., 2])
    )


def two_lobes(radius: float, offset: np.ndarray) -> Shape:
    return lambda p: np.maximum(sphere(radius)(p - offset), sphere(radius * 0.8)(p + offset))


def add_shape(grid: np.ndarray, centre: np.ndarray, reach: float, shape: Shape) -> None:
    """Write the shape into the grid points within `reach` of its centre (a margin of finite
    values around the surface; the rest of the grid stays NaN), one voxel of transition."""
    resolution = grid.shape[0] - 1
    voxel = 2 / resolution
    low = np.clip(np.floor((centre - reach + 1) / voxel).astype(int), 0, resolution)
    high = np.clip(np.ceil((centre + reach + 1) / voxel).astype(int) + 1, 0, resolution + 1)
    axes = [np.arange(lo, hi) * voxel - 1 - c for lo, hi, c in zip(low, high, centre, strict=True)]
    points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).astype(np.float32)
    values = np.clip(shape(points) / voxel, -1, 1).astype(np.float32)
    region = tuple(slice(lo, hi) for lo, hi in zip(low, high, strict=True))
    grid[region] = np.fmax(grid[region], values)


def lattice_centres(per_axis: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    cells = np.array(per_axis)
    index = np.stack(np.meshgrid(*[np.arange(n) for n in per_axis], indexing="ij"), -1)
    return -0.9 + 1.8 * (index.reshape(-1, 3) + 0.5) / cells, 1.8 / cells


def shapes_volume(size: int, rng: np.random.Generator) -> np.ndarray:
    """30 separated parts in a 4x4x2 lattice: solids, hollow shells and boxes, tori, cylinders;
    a few of them small (under the demo's 5% of the box diagonal)."""
    grid = np.full((size, size, size), np.nan, np.float32)
    centres, cell = lattice_centres((4, 4, 2))
    for index, centre in enumerate(centres[:30]):
        scale = 0.07 if index % 7 == 6 else rng.uniform(0.6, 0.9) * cell.min() / 2
        kinds = [
            sphere(scale),
            shell(scale, scale / 4),
            box(np.array([scale, scale * 0.7, scale * 0.5])),
            hollow_box(np.array([scale, scale * 0.8, scale * 0.6]), scale / 5),
            torus(scale * 0.65, scale * 0.3),
            cylinder(scale * 0.5, scale),
            two_lobes(scale * 0.5, np.array([scale * 0.4, 0, 0])),
        ]
        add_shape(grid, centre, scale * 1.2, kinds[index % len(kinds)])
    return grid


def blobs_volume(size: int, rng: np.random.Generator) -> np.ndarray:
    """300 small separated two-lobed blobs in a 7x7x7 lattice, radius 0.02 to 0.08."""
    grid = np.full((size, size, size), np.nan, np.float32)
    centres, _ = lattice_centres((7, 7, 7))
    for centre in centres[rng.choice(len(centres), 300, replace=False)]:
        radius = rng.uniform(0.02, 0.08)
        offset = rng.normal(size=3) * radius * 0.25
        add_shape(grid, centre, radius * 1.6, two_lobes(radius, offset))
    return grid


# --- the two chains ---------------------------------------------------------------------------


@dataclass
class Run:
    wall: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    faces: int = 0
    parts: int = 0

    def timed(self, stage: str, work: Callable[[], Any]) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        self.wall[stage] = time.perf_counter() - wall
        self.cpu[stage] = time.process_time() - cpu
        return result


def ours(grid: np.ndarray, target_faces: int | None, glb: Path, clean: bool = False) -> Run:
    """mesh_volume's steps, one by one, then the GLB."""
    run = Run()
    vertices, faces = run.timed("marching cubes", lambda: extract_mesh(grid))
    if clean:
        thresholds = SmallPieceThresholds()
        vertices, faces = run.timed(
            "clean", lambda: remove_small_pieces(vertices, faces, thresholds)
        )
    if target_faces:
        vertices, faces = run.timed("decimate", lambda: decimate(vertices, faces, target_faces))
    pieces = run.timed("split", lambda: split_parts(vertices, faces))
    parts = assemble_parts([[Part("", 0, v, f) for v, f in pieces if len(f) > TINY_PART_FACES]])
    run.timed("export", lambda: write_glb(parts, glb))
    run.faces, run.parts = sum(len(part.faces) for part in parts), len(parts)
    return run


def official(grid: np.ndarray, target_faces: int | None, glb: Path) -> Run:
    import mcubes
    import pymeshlab
    import trimesh

    run = Run()
    resolution = grid.shape[0] - 1
    vertices, faces = run.timed("marching cubes", lambda: mcubes.marching_cubes(grid, 0))
    mesh = run.timed(
        "trimesh", lambda: trimesh.Trimesh(vertices * 2 / resolution - 1, faces.astype(np.int64))
    )

    def clean() -> trimesh.Trimesh:
        meshes = pymeshlab.MeshSet()
        meshes.add_mesh(pymeshlab.Mesh(mesh.vertices, mesh.faces))
        meshes.meshing_remove_unreferenced_vertices()
        meshes.meshing_merge_close_vertices(threshold=pymeshlab.PercentageValue(1))
        meshes.meshing_remove_duplicate_faces()
        meshes.meshing_remove_null_faces()
        meshes.meshing_remove_connected_component_by_diameter(
            mincomponentdiag=pymeshlab.PercentageValue(5)
        )
        meshes.meshing_remove_connected_component_by_face_number(mincomponentsize=25)
        meshes.meshing_remove_unreferenced_vertices()
        cleaned = meshes.current_mesh()
        return trimesh.Trimesh(cleaned.vertex_matrix(), cleaned.face_matrix())

    mesh = run.timed("clean", clean)
    if target_faces:

        def quadric() -> trimesh.Trimesh:
            meshes = pymeshlab.MeshSet()
            meshes.add_mesh(pymeshlab.Mesh(mesh.vertices, mesh.faces))
            meshes.meshing_decimation_quadric_edge_collapse(
                targetfacenum=target_faces, optimalplacement=False
            )
            decimated = meshes.current_mesh()
            return trimesh.Trimesh(decimated.vertex_matrix(), decimated.face_matrix())

        mesh = run.timed("decimate", quadric)
    pieces = run.timed("split", lambda: mesh.split(only_watertight=False))
    pieces = [piece for piece in pieces if len(piece.faces) > TINY_PART_FACES]

    def export() -> None:
        scene = trimesh.Scene()
        for index, piece in enumerate(pieces):
            piece.vertices = to_gltf_frame(piece.vertices)
            piece.visual.face_colors = PALETTE[index % len(PALETTE)]
            scene.add_geometry(piece)
        glb.write_bytes(scene.export(file_type="glb"))

    run.timed("export", export)
    run.faces, run.parts = sum(len(piece.faces) for piece in pieces), len(pieces)
    return run


# --- report -----------------------------------------------------------------------------------

STAGES = ("marching cubes", "trimesh", "clean", "decimate", "split", "export")


def print_table(title: str, runs: dict[str, Run]) -> None:
    print(f"\n{title}\n  {'wall seconds':<16}" + "".join(f"{name:>18}" for name in runs))
    for stage in STAGES:
        if any(stage in run.wall for run in runs.values()):
            cells = [
                f"{run.wall[stage]:.2f}" if stage in run.wall else "-" for run in runs.values()
            ]
            print(f"  {stage:<16}" + "".join(f"{cell:>18}" for cell in cells))
    rows = {
        "total wall": [f"{sum(run.wall.values()):.2f}" for run in runs.values()],
        "total cpu": [f"{sum(run.cpu.values()):.2f}" for run in runs.values()],
        "faces": [str(run.faces) for run in runs.values()],
        "parts kept": [str(run.parts) for run in runs.values()],
    }
    for label, cells in rows.items():
        print(f"  {label:<16}" + "".join(f"{cell:>18}" for cell in cells))
    mine, theirs = runs["ours"], runs["official"]
    print(
        f"  official / ours: {sum(theirs.wall.values()) / sum(mine.wall.values()):.1f}x wall, "
        f"{sum(theirs.cpu.values()) / sum(mine.cpu.values()):.1f}x cpu; "
        f"ours keeps {mine.parts - theirs.parts} more parts"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=385, help="grid points per axis (R + 1)")
    parser.add_argument("--target-faces", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    volumes = {"shapes": shapes_volume(args.size, rng), "blobs": blobs_volume(args.size, rng)}
    folder = Path(tempfile.mkdtemp(prefix="bench_postprocess_"))
    skimage_s = pymcubes_s = 0.0
    for name, grid in volumes.items():
        start = time.process_time()
        extract_mesh(grid, "pymcubes")
        pymcubes_s += time.process_time() - start
        for target in (None, args.target_faces):
            runs = {
                "ours": ours(grid, target, folder / "ours.glb"),
                "official": official(grid, target, folder / "official.glb"),
            }
            if target is None:
                skimage_s += runs["ours"].cpu["marching cubes"]
                runs["ours, clean-up on"] = ours(grid, None, folder / "clean.glb", clean=True)
            decimation = f"decimated to {target} faces" if target else "no decimation"
            print_table(f"{name} volume, {args.size}^3, {decimation}", runs)
    print(
        f"\nextract_mesh cpu seconds, both volumes: skimage {skimage_s:.2f}, "
        f"pymcubes {pymcubes_s:.2f} ({pymcubes_s / skimage_s:.1f}x)"
    )


if __name__ == "__main__":
    main()
