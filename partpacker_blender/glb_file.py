"""Reading a GLB (glTF 2.0 binary) into parts with numpy alone: each mesh node of the scene is one
part, its vertices moved by the node's world transform (glTF frame, Y up, as parts.npz).

Our server's parts.glb colours a part with a material; the public Space's GLB, written by
trimesh, with a COLOR_0 vertex colour of the part's palette colour and no material. Both are
read as the part's one colour in sRGB bytes: trimesh stores colour bytes as given (the Space's
palette is sRGB, glTF's base colour factor linear). Everything is checked before Blender sees it.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from .parts_file import Part, PartsFileError

GLB_MAGIC = 0x46546C67
JSON_CHUNK = 0x4E4F534A
BIN_CHUNK = 0x004E4942
TRIANGLES = 4
COMPONENTS = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32}
COMPONENTS[5126] = np.float32
WIDTHS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}
WHITE = (255, 255, 255, 255)


class GlbFileError(PartsFileError):
    """The GLB is missing, unreadable or holds something other than triangle meshes."""


def read_glb(path: Path) -> list[Part]:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise GlbFileError(f"cannot read {path}: {error.strerror or error}") from error
    gltf, blob = _chunks(data, path)
    if gltf.get("extensionsRequired"):
        needed = ", ".join(map(str, gltf["extensionsRequired"]))
        raise GlbFileError(f"{path.name} needs glTF extensions this add-on does not read: {needed}")
    try:
        return _parts(gltf, blob)
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise GlbFileError(
            f"{path.name} is not a GLB of meshes this add-on reads: {error}"
        ) from error


def _chunks(data: bytes, path: Path) -> tuple[dict[str, Any], bytes]:
    if len(data) < 20 or struct.unpack_from("<I", data)[0] != GLB_MAGIC:
        raise GlbFileError(f"{path.name} is not a GLB file")
    offset, gltf, blob = 12, None, b""
    while offset + 8 <= len(data):
        length, kind = struct.unpack_from("<II", data, offset)
        chunk = data[offset + 8 : offset + 8 + length]
        if kind == JSON_CHUNK:
            gltf = json.loads(chunk)
        elif kind == BIN_CHUNK:
            blob = chunk
        offset += 8 + length
    if not isinstance(gltf, dict):
        raise GlbFileError(f"{path.name} has no glTF description")
    return gltf, blob


def _parts(gltf: dict[str, Any], blob: bytes) -> list[Part]:
    nodes = gltf.get("nodes", [])
    scene = gltf.get("scenes", [{}])[gltf.get("scene", 0)] if gltf.get("scenes") else {}
    roots = scene.get("nodes", range(len(nodes)))
    parts: list[Part] = []
    stack = [(index, np.eye(4)) for index in reversed(list(roots))]
    while stack:
        index, parent = stack.pop()
        node = nodes[index]
        world = parent @ _local_matrix(node)
        if "mesh" in node:
            name = node.get("name") or f"part_{len(parts):03d}"
            parts.append(_part(gltf, blob, gltf["meshes"][node["mesh"]], name, world))
        stack.extend((child, world) for child in reversed(node.get("children", [])))
    return parts


def _local_matrix(node: dict[str, Any]) -> np.ndarray:
    if "matrix" in node:
        return np.asarray(node["matrix"], dtype=np.float64).reshape(4, 4).T  # column-major
    x, y, z, w = node.get("rotation", (0.0, 0.0, 0.0, 1.0))
    rotation = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )
    matrix = np.eye(4)
    matrix[:3, :3] = rotation * np.asarray(node.get("scale", (1.0, 1.0, 1.0)))
    matrix[:3, 3] = node.get("translation", (0.0, 0.0, 0.0))
    return matrix


def _part(gltf: dict, blob: bytes, mesh: dict, name: str, world: np.ndarray) -> Part:
    vertices, faces, colors = [], [], []
    count = 0
    for primitive in mesh["primitives"]:
        if primitive.get("mode", TRIANGLES) != TRIANGLES:
            raise ValueError(f"{name} has a primitive that is not triangles")
        positions = _accessor(gltf, blob, primitive["attributes"]["POSITION"])
        if "indices" in primitive:
            indices = _accessor(gltf, blob, primitive["indices"]).astype(np.int64)
        else:
            indices = np.arange(len(positions))
        if len(indices) % 3 or (
            len(indices) and not 0 <= indices.min() <= indices.max() < len(positions)
        ):
            raise ValueError(f"{name} has face indices outside its {len(positions)} vertices")
        vertices.append(positions[:, :3].astype(np.float64))
        faces.append(indices.reshape(-1, 3) + count)
        count += len(positions)
        colors.append(_primitive_color(gltf, blob, primitive))
    moved = (
        np.concatenate(vertices) @ world[:3, :3].T + world[:3, 3] if vertices else np.zeros((0, 3))
    )
    if not np.isfinite(moved).all():
        raise ValueError(f"{name} has NaN or infinite coordinates")
    return Part(
        name=name,
        volume=None,
        vertices=moved.astype(np.float32),
        faces=np.concatenate(faces).astype(np.int32) if faces else np.zeros((0, 3), np.int32),
        color=colors[0] if colors else WHITE,
    )


def _primitive_color(gltf: dict, blob: bytes, primitive: dict) -> tuple[int, ...]:
    """COLOR_0's median colour, else the material's base colour, else white."""
    if "COLOR_0" in primitive["attributes"]:
        accessor = gltf["accessors"][primitive["attributes"]["COLOR_0"]]
        values = _accessor(gltf, blob, primitive["attributes"]["COLOR_0"]).astype(np.float64)
        scale = {5121: 255.0, 5123: 65535.0}.get(accessor["componentType"], 1.0)
        rgba = np.median(values, axis=0) / scale if len(values) else np.ones(4)
        rgba = np.append(rgba, 1.0) if len(rgba) == 3 else rgba
        return tuple(round(float(c) * 255) for c in np.clip(rgba, 0.0, 1.0))
    if "material" in primitive:
        material = gltf["materials"][primitive["material"]]
        factor = material.get("pbrMetallicRoughness", {}).get("baseColorFactor", (1, 1, 1, 1))
        return _linear_to_srgb_bytes(factor)
    return WHITE


def _linear_to_srgb_bytes(rgba: Any) -> tuple[int, ...]:
    rgb = np.clip(np.asarray(rgba[:3], dtype=np.float64), 0.0, 1.0)
    srgb = np.where(rgb <= 0.0031308, rgb * 12.92, 1.055 * rgb ** (1 / 2.4) - 0.055)
    return (*(round(float(c) * 255) for c in srgb), round(float(rgba[3]) * 255))


def _accessor(gltf: dict, blob: bytes, index: int) -> np.ndarray:
    accessor = gltf["accessors"][index]
    dtype = np.dtype(COMPONENTS[accessor["componentType"]])
    width, count = WIDTHS[accessor["type"]], int(accessor["count"])
    view = gltf["bufferViews"][accessor["bufferView"]]
    if view.get("buffer", 0) != 0:
        raise ValueError("data outside the GLB's own buffer")
    start = view.get("byteOffset", 0) + accessor.get("byteOffset", 0)
    stride = view.get("byteStride") or dtype.itemsize * width
    end = start + stride * (count - 1) + dtype.itemsize * width if count else start
    if end > min(len(blob), view.get("byteOffset", 0) + view["byteLength"]):
        raise ValueError(f"accessor {index} runs past its buffer")
    rows = np.ndarray((count, width), dtype, blob, start, (stride, dtype.itemsize))
    return rows.copy() if width > 1 else rows[:, 0].copy()
