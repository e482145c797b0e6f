"""Synthetic parts in the protocol's layout (backend/PROTOCOL.md), written without the add-on;
layouts drawn in a process of their own."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

GLTF_TO_BLENDER = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], dtype=np.float64)
"""Blender's glTF importer: glTF (x, y, z) -> Blender (x, -z, y)."""


def uv_sphere(centre, radius: float, rings: int = 6, segments: int = 8):
    """A closed sphere whose triangles wind counter-clockwise seen from outside."""
    top, bottom = np.array([0.0, 0.0, radius]), np.array([0.0, 0.0, -radius])
    theta = np.linspace(0, np.pi, rings + 1)[1:-1]
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    ring_points = radius * np.stack(
        [np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], axis=-1
    ).reshape(-1, 3)
    vertices = np.vstack([top, ring_points, bottom]) + np.asarray(centre, dtype=np.float64)
    faces = []
    ring = lambda r, s: 1 + r * segments + s % segments  # noqa: E731
    for s in range(segments):
        faces.append([0, ring(0, s), ring(0, s + 1)])
        for r in range(rings - 2):
            a, b = ring(r, s), ring(r, s + 1)
            c, d = ring(r + 1, s), ring(r + 1, s + 1)
            faces += [[a, c, d], [a, d, b]]
        last = len(vertices) - 1
        faces.append([last, ring(rings - 2, s + 1), ring(rings - 2, s)])
    return vertices.astype(np.float32), np.array(faces, dtype=np.int32)


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Positive for a closed mesh whose faces wind counter-clockwise seen from outside."""
    a, b, c = (vertices[faces[:, i]].astype(np.float64) for i in range(3))
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6)


def sample_parts():
    """Three spheres of different sizes at different places, with colours (glTF frame)."""
    spheres = [
        uv_sphere((0.5, 0.25, -0.1), 0.3, 6, 8),
        uv_sphere((-0.4, -0.3, 0.2), 0.2, 5, 7),
        uv_sphere((0.0, 0.6, 0.5), 0.1, 4, 6),
    ]
    colors = np.array([[255, 128, 0, 255], [0, 64, 255, 255], [10, 200, 30, 255]], np.uint8)
    return spheres, colors


def parts_arrays(spheres, colors) -> dict[str, np.ndarray]:
    vertex_counts = [len(v) for v, _ in spheres]
    face_counts = [len(f) for _, f in spheres]
    return {
        "vertices": np.concatenate([v for v, _ in spheres]).astype(np.float32),
        "faces": np.concatenate([f for _, f in spheres]).astype(np.int32),
        "vertex_offsets": np.concatenate([[0], np.cumsum(vertex_counts)]).astype(np.int64),
        "face_offsets": np.concatenate([[0], np.cumsum(face_counts)]).astype(np.int64),
        "colors": colors,
        "volumes": np.array([0, 1, 1][: len(spheres)], dtype=np.int32),
        "names": np.array([f"part_{i:03d}" for i in range(len(spheres))]),
    }


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    np.savez(path, **arrays)
    return path


def write_glb(path: Path, spheres, colors) -> Path:
    """A minimal glTF 2.0 binary: one mesh node per part, positions and indices only."""
    blob, views, accessors, meshes, materials = b"", [], [], [], []
    for index, (vertices, faces) in enumerate(spheres):
        for data, target, component, kind in (
            (vertices.astype(np.float32), 34962, 5126, "VEC3"),
            (faces.astype(np.uint32).ravel(), 34963, 5125, "SCALAR"),
        ):
            views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": data.nbytes})
            views[-1]["target"] = target
            accessor = {"bufferView": len(views) - 1, "componentType": component}
            accessor.update(count=len(data), type=kind)
            if kind == "VEC3":
                accessor.update(min=data.min(0).tolist(), max=data.max(0).tolist())
            accessors.append(accessor)
            blob += data.tobytes()
        linear = ((colors[index, :3] / 255.0 + 0.055) / 1.055) ** 2.4
        materials.append({"pbrMetallicRoughness": {"baseColorFactor": [*linear.tolist(), 1.0]}})
        primitive = {"attributes": {"POSITION": 2 * index}, "indices": 2 * index + 1}
        meshes.append({"primitives": [{**primitive, "material": index}]})
    gltf = {
        "asset": {"version": "2.0"},
        "scene": 0,
        "scenes": [{"nodes": list(range(len(spheres)))}],
        "nodes": [{"mesh": i, "name": f"part_{i:03d}"} for i in range(len(spheres))],
        "meshes": meshes,
        "materials": materials,
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [{"byteLength": len(blob)}],
    }
    text = json.dumps(gltf).encode()
    text += b" " * (-len(text) % 4)
    blob += b"\0" * (-len(blob) % 4)
    chunks = struct.pack("<II", len(text), 0x4E4F534A) + text
    chunks += struct.pack("<II", len(blob), 0x004E4942) + blob
    path.write_bytes(struct.pack("<III", 0x46546C67, 2, 12 + len(chunks)) + chunks)
    return path


def drawn_in_own_process(python_arguments: list[str], output: Path) -> Any:
    """Run `python python_arguments...` (a drawing that writes `output` as JSON, see
    draw_panels.py for why it needs a process of its own) and read what it drew."""
    completed = subprocess.run(
        [sys.executable, *python_arguments],
        cwd=Path(__file__).parent,
        env={k: v for k, v in os.environ.items() if k != "BLENDER_USER_RESOURCES"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert output.is_file(), f"nothing drawn:\n{completed.stdout}\n{completed.stderr[-3000:]}"
    return json.loads(output.read_text())


def fake_python(folder: Path, body: str) -> Path:
    """An executable shell script named `python` that runs `body`."""
    script = folder / "python"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return script
