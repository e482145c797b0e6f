"""Mesh files written from arrays: binary STL, OBJ (with its .mtl), glTF binary. Plain Python
and numpy: no bpy, so the files are exactly what these functions say.

Vertices come in Blender's frame (Z up, metres); OBJ and glTF are Y up, as their readers (and
Blender's own exporters) expect, so those two turn (x, y, z) into (x, z, -y).
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

GLB_MAGIC, GLB_JSON, GLB_BIN = 0x46546C67, 0x4E4F534A, 0x004E4942


@dataclass(frozen=True)
class NamedMesh:
    name: str
    vertices: np.ndarray
    """(n, 3) float32, Blender's frame."""
    faces: np.ndarray
    """(m, 3) int32 triangles."""
    color: tuple[float, float, float, float] = (0.8, 0.8, 0.8, 1.0)
    """Linear RGBA."""


def y_up(vertices: np.ndarray) -> np.ndarray:
    x, y, z = vertices[:, 0], vertices[:, 1], vertices[:, 2]
    return np.stack([x, z, -y], axis=1).astype(np.float32)


def write_stl(path: Path, mesh: NamedMesh) -> None:
    corners = mesh.vertices[mesh.faces]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    lengths = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.divide(normals, lengths, out=np.zeros_like(normals), where=lengths > 0)
    floats = np.concatenate([normals, corners.reshape(-1, 9)], axis=1).astype("<f4")
    # 50-byte records: 12 floats and a zero "attribute byte count", as 25 little-endian shorts
    records = np.zeros((len(floats), 25), dtype="<u2")
    records[:, :24] = floats.view("<u2")
    header = f"PartPacker part {mesh.name}".encode("ascii", "replace")[:80].ljust(80, b" ")
    path.write_bytes(header + struct.pack("<I", len(records)) + records.tobytes())


def write_obj(path: Path, mesh: NamedMesh) -> None:
    """`path` and a material library beside it (same name, .mtl) with the part's colour."""
    material = path.with_suffix(".mtl")
    r, g, b, a = mesh.color
    material.write_text(f"newmtl {mesh.name}\nKd {r:.6f} {g:.6f} {b:.6f}\nd {a:.6f}\n")
    vertices = y_up(mesh.vertices)
    lines = [f"mtllib {material.name}\no {mesh.name}\nusemtl {mesh.name}\n"]
    lines.append(("v %.6f %.6f %.6f\n" * len(vertices)) % tuple(vertices.ravel().tolist()))
    lines.append(("f %d %d %d\n" * len(mesh.faces)) % tuple((mesh.faces.ravel() + 1).tolist()))
    path.write_text("".join(lines), encoding="utf-8")


def write_glb(path: Path, meshes: Sequence[NamedMesh]) -> None:
    """One scene with a node (and mesh and material) per part, named after it; every mesh has
    at least one face."""
    blob, views, accessors = bytearray(), [], []

    def add(data: np.ndarray, target: int, component: int, kind: str) -> int:
        views.append(
            {"buffer": 0, "byteOffset": len(blob), "byteLength": data.nbytes, "target": target}
        )
        accessor = {"bufferView": len(views) - 1, "componentType": component}
        accessor.update(count=len(data), type=kind)
        if kind == "VEC3":
            accessor.update(min=data.min(axis=0).tolist(), max=data.max(axis=0).tolist())
        accessors.append(accessor)
        blob.extend(data.tobytes())
        blob.extend(b"\0" * (-len(blob) % 4))
        return len(accessors) - 1

    gltf_meshes, materials = [], []
    for index, mesh in enumerate(meshes):
        positions = add(y_up(mesh.vertices), 34962, 5126, "VEC3")
        indices = add(mesh.faces.astype("<u4").ravel(), 34963, 5125, "SCALAR")
        primitive = {"attributes": {"POSITION": positions}, "indices": indices}
        primitive.update(mode=4, material=index)
        gltf_meshes.append({"name": mesh.name, "primitives": [primitive]})
        pbr = {"baseColorFactor": list(mesh.color), "metallicFactor": 0.0}
        materials.append({"name": mesh.name, "pbrMetallicRoughness": pbr})
    document = {
        "asset": {"version": "2.0", "generator": "PartPacker for Blender"},
        "scene": 0,
        "scenes": [{"nodes": list(range(len(meshes)))}],
        "nodes": [{"name": m.name, "mesh": i} for i, m in enumerate(meshes)],
        "meshes": gltf_meshes,
        "materials": materials,
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [{"byteLength": len(blob)}],
    }
    text = json.dumps(document, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 4)
    chunks = struct.pack("<II", len(text), GLB_JSON) + text
    chunks += struct.pack("<II", len(blob), GLB_BIN) + bytes(blob)
    path.write_bytes(struct.pack("<III", GLB_MAGIC, 2, 12 + len(chunks)) + chunks)


def file_names(names: Sequence[str], suffix: str) -> list[str]:
    """A safe, distinct file name for each of `names` (object names may hold / or :)."""
    taken: set[str] = set()
    result = []
    for name in names:
        stem = re.sub(r"[^\w.-]+", "_", name).strip("._") or "part"
        candidate, number = stem, 2
        while candidate.lower() in taken:  # Windows and macOS ignore case in names
            candidate, number = f"{stem}_{number}", number + 1
        taken.add(candidate.lower())
        result.append(candidate + suffix)
    return result
