"""The README's picture: a toy robot, hand-made as two packed occupancy volumes, through our
marching cubes, part split and palette (backend) and our importer (Blender), rendered with Cycles:
once as imported, once exploded with the result's Explode slider (partpacker_blender/parts).

    python3 docs/make_picture.py        # after `python3 dev.py test` has built both environments

No model runs: the build machine has neither the weights nor a GPU. The robot is made the way
PartPacker packs an object: parts that touch sit in different volumes, so each volume splits
into separate parts.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PICTURE = ROOT / "docs" / "parts-in-blender.png"
RESOLUTION = 128
EXPLODE = 0.45
"""The right-hand copy's Explode slider: each part 1.45 times as far from the centre."""

# Model frame: axis 0 points to the front, axis 1 to the side, axis 2 up.
# (kind, volume, centre, size): boxes by half extents, cylinders (upright) by radius and half
# height, spheres by radius.
ROBOT = [
    ("box", 0, (0.0, 0.0, 0.0), (0.22, 0.32, 0.3)),  # torso
    ("box", 1, (0.0, 0.0, 0.48), (0.2, 0.2, 0.16)),  # head
    ("sphere", 0, (0.2, 0.08, 0.5), 0.05),  # eyes
    ("sphere", 0, (0.2, -0.08, 0.5), 0.05),
    ("cylinder", 0, (0.0, 0.0, 0.72), (0.025, 0.1)),  # antenna
    ("sphere", 0, (0.0, 0.0, 0.82), 0.05),
    ("cylinder", 1, (0.0, 0.4, -0.02), (0.09, 0.3)),  # arms
    ("cylinder", 1, (0.0, -0.4, -0.02), (0.09, 0.3)),
    ("sphere", 0, (0.0, 0.4, -0.4), 0.1),  # hands
    ("sphere", 0, (0.0, -0.4, -0.4), 0.1),
    ("box", 1, (0.0, 0.14, -0.55), (0.12, 0.1, 0.25)),  # legs
    ("box", 1, (0.0, -0.14, -0.55), (0.12, 0.1, 0.25)),
    ("box", 0, (0.06, 0.14, -0.86), (0.18, 0.12, 0.06)),  # feet
    ("box", 0, (0.06, -0.14, -0.86), (0.18, 0.12, 0.06)),
]


def write_parts(npz_path: Path) -> None:
    """Backend side: both volumes → meshes → parts → parts.npz."""
    import numpy as np

    from backend.export import write_npz
    from backend.meshing import mesh_volume
    from backend.parts import assemble_parts

    axis = np.linspace(-1.0, 1.0, RESOLUTION + 1)
    points = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1)
    distances = [np.full(points.shape[:3], np.inf) for _ in range(2)]
    for kind, volume, centre, size in ROBOT:
        offset = points - np.asarray(centre)
        distances[volume] = np.minimum(distances[volume], signed_distance(kind, offset, size))
    grids = [np.clip(-distance * RESOLUTION / 2, -1.0, 1.0) for distance in distances]
    parts = assemble_parts([mesh_volume(grid, volume) for volume, grid in enumerate(grids)])
    write_npz(parts, npz_path)
    print(f"{len(parts)} parts written to {npz_path}")


def signed_distance(kind: str, offset, size):
    import numpy as np

    if kind == "sphere":
        return np.linalg.norm(offset, axis=-1) - size
    if kind == "cylinder":
        radius, half_height = size
        across = np.linalg.norm(offset[..., :2], axis=-1) - radius
        along = np.abs(offset[..., 2]) - half_height
        return np.maximum(across, along)
    outside = np.abs(offset) - np.asarray(size)
    return np.linalg.norm(np.maximum(outside, 0), axis=-1) + np.minimum(outside.max(-1), 0)


def render(npz_path: Path) -> None:
    """Blender side: import the parts as the add-on does, light them, render with Cycles."""
    import bpy

    sys.path.insert(0, str(ROOT))
    from partpacker_blender.importer import ImportOptions, import_parts
    from partpacker_blender.parts.explode import set_explode

    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    assembled = import_parts(
        npz_path, scene, stem="robot", options=ImportOptions(location=(-1.2, 0, 0))
    )
    exploded = import_parts(
        npz_path, scene, stem="robot", options=ImportOptions(location=(1.2, 0, 0))
    )
    set_explode(exploded.root, EXPLODE)
    camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(camera)
    camera.location = (1.4, -8.0, 1.2)
    aim = camera.constraints.new("TRACK_TO")
    aim.target = bpy.data.objects.new("Aim", None)
    aim.target.location = (0.0, 0.0, -0.1)
    scene.camera = camera
    sun = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN"))
    sun.data.energy = 3.0
    sun.rotation_euler = (0.7, 0.2, -0.5)
    scene.collection.objects.link(sun)
    scene.world = bpy.data.worlds.new("World")
    scene.world.color = (0.8, 0.8, 0.8)
    scene.render.engine = "CYCLES"
    scene.cycles.samples = 64
    scene.render.resolution_x, scene.render.resolution_y = 1200, 720
    scene.render.film_transparent = True
    scene.render.filepath = str(PICTURE)
    bpy.ops.render.render(write_still=True)
    print(f"{len(assembled.parts)} part objects, twice, rendered to {PICTURE}")


def main() -> None:
    if sys.argv[1:2] == ["parts"]:
        write_parts(Path(sys.argv[2]))
    elif sys.argv[1:2] == ["render"]:
        render(Path(sys.argv[2]))
    else:
        with tempfile.TemporaryDirectory() as folder:
            npz = Path(folder) / "parts.npz"
            for env, stage in (("backend", "parts"), ("blender", "render")):
                python = ROOT / ".venv" / env / "bin" / "python"
                subprocess.run([str(python), __file__, stage, str(npz)], cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
