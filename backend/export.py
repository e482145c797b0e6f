"""The job's mesh files: parts.glb (one coloured mesh node per part, Y-up as the demo's GLB) and
parts.npz (the same parts as arrays, backend/PROTOCOL.md §parts.npz), written atomically."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import trimesh
from trimesh.visual import TextureVisuals
from trimesh.visual.material import PBRMaterial

from .errors import BadInputError, OutputError
from .files import write_atomically
from .parts import Part, as_color

GLTF_AXES = [1, 2, 0]
"""Model (x, y, z) → glTF (y, z, x): a rotation (determinant +1), so the winding is kept."""
MODEL_AXES = [2, 0, 1]
"""The inverse: glTF (x, y, z) → model (z, x, y)."""

ROUGHNESS = 0.5
"""Blender's default Principled roughness; metallic is 0 (glTF's default would be 1)."""

NPZ_ARRAYS = ("vertices", "faces", "vertex_offsets", "face_offsets", "colors", "volumes", "names")


def to_gltf_frame(vertices: np.ndarray) -> np.ndarray:
    return vertices[:, GLTF_AXES]


def from_gltf_frame(vertices: np.ndarray) -> np.ndarray:
    return vertices[:, MODEL_AXES]


def srgb_to_linear(color: tuple[int, ...]) -> list[float]:
    """sRGB bytes → linear floats (the alpha byte is already linear)."""
    *rgb, alpha = (channel / 255 for channel in color)
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return [*linear, alpha]


def write_glb(parts: list[Part], path: Path) -> Path:
    """One mesh node per part, named by the part, with a PBR material of the part's colour."""
    scene = trimesh.Scene()
    for part in parts:
        mesh = trimesh.Trimesh(to_gltf_frame(part.vertices), part.faces, process=False)
        mesh.visual = TextureVisuals(
            material=PBRMaterial(
                name=part.name,
                baseColorFactor=part.color,
                metallicFactor=0.0,
                roughnessFactor=ROUGHNESS,
            )
        )
        scene.add_geometry(mesh, geom_name=part.name, node_name=part.name)
    exact_colors = {part.name: srgb_to_linear(part.color) for part in parts}

    def set_exact_colors(tree: dict[str, Any]) -> None:
        # trimesh keeps material colours as bytes; linear bytes would shift dark sRGB channels
        for material in tree.get("materials", []):
            material["pbrMetallicRoughness"]["baseColorFactor"] = exact_colors[material["name"]]

    glb = trimesh.exchange.gltf.export_glb(scene, tree_postprocessor=set_exact_colors)
    return _write_output(Path(path), lambda temporary: temporary.write_bytes(glb))


def write_npz(parts: list[Part], path: Path) -> Path:
    """All parts concatenated, vertices in the glTF frame of parts.glb (PROTOCOL.md)."""
    vertex_counts = [len(part.vertices) for part in parts]
    face_counts = [len(part.faces) for part in parts]
    arrays: dict[str, Any] = {
        "vertices": _concatenate([to_gltf_frame(part.vertices) for part in parts], np.float32),
        "faces": _concatenate([part.faces for part in parts], np.int32),
        "vertex_offsets": np.concatenate([[0], np.cumsum(vertex_counts)]).astype(np.int64),
        "face_offsets": np.concatenate([[0], np.cumsum(face_counts)]).astype(np.int64),
        "colors": np.array([part.color for part in parts], dtype=np.uint8).reshape(-1, 4),
        "volumes": np.array([part.volume for part in parts], dtype=np.int32),
        "names": np.array([part.name for part in parts], dtype=np.str_),
    }

    def save(temporary: Path) -> None:
        with temporary.open("wb") as file:  # a file name without .npz would get one appended
            np.savez(file, **arrays)

    return _write_output(Path(path), save)


def write_json(record: dict[str, Any], path: Path) -> Path:
    text = json.dumps(record, indent=1)
    return _write_output(Path(path), lambda temporary: temporary.write_text(text))


def read_npz(path: Path) -> list[Part]:
    """The parts of a parts.npz, vertices back in the model frame."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [name for name in NPZ_ARRAYS if name not in data.files]
            if missing:
                raise BadInputError(f"{path} is not a parts.npz: no {', '.join(missing)}")
            arrays = {name: data[name] for name in NPZ_ARRAYS}
    except (OSError, ValueError) as error:
        raise BadInputError(f"cannot read the parts file {path}: {error}") from error
    vertex_offsets, face_offsets = arrays["vertex_offsets"], arrays["face_offsets"]
    return [
        Part(
            name=str(arrays["names"][index]),
            volume=int(arrays["volumes"][index]),
            vertices=from_gltf_frame(
                arrays["vertices"][vertex_offsets[index] : vertex_offsets[index + 1]]
            ),
            faces=arrays["faces"][face_offsets[index] : face_offsets[index + 1]],
            color=as_color(arrays["colors"][index]),
        )
        for index in range(len(arrays["names"]))
    ]


def _concatenate(arrays: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate([np.zeros((0, 3), dtype), *arrays]).astype(dtype)


def _write_output(path: Path, write: Callable[[Path], object]) -> Path:
    try:
        return write_atomically(path, write)
    except OSError as error:
        raise OutputError(
            f"cannot write {path}: {error.strerror or error}",
            "choose an output folder that exists, that you can write to, with free disk space",
        ) from error
