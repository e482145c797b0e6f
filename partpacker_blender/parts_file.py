"""Reading and checking a job folder's parts.npz (backend/PROTOCOL.md) with numpy alone.

Everything is checked here, before Blender sees it: Blender keeps an out-of-range face index
without complaint and crashes or draws garbage later.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

EXPECTED_DTYPES = {
    "vertices": np.dtype(np.float32),
    "faces": np.dtype(np.int32),
    "vertex_offsets": np.dtype(np.int64),
    "face_offsets": np.dtype(np.int64),
    "colors": np.dtype(np.uint8),
    "volumes": np.dtype(np.int32),
}


class PartsFileError(ValueError):
    """parts.npz is missing, unreadable or does not follow the protocol's layout."""


@dataclass(frozen=True)
class Part:
    name: str
    volume: int | None
    """Which packed volume (0 or 1) it came from; None where the file does not say (a GLB)."""
    vertices: np.ndarray
    """float32 [V, 3] in the glTF frame (Y up)."""
    faces: np.ndarray
    """int32 [F, 3], local to this part, counter-clockwise seen from outside."""
    color: tuple[int, ...]
    """sRGB bytes."""


def read_parts(path: Path) -> list[Part]:
    """The parts of `path`, every array checked against the protocol first."""
    arrays = _load_arrays(Path(path))
    _check_layout(arrays)
    return _split_parts(arrays)


def _load_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except FileNotFoundError as error:
        raise PartsFileError(f"{path} does not exist") from error
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise PartsFileError(f"{path} is not a readable parts.npz: {error}") from error


def _check_layout(arrays: dict[str, np.ndarray]) -> None:
    missing = sorted({*EXPECTED_DTYPES, "names"} - set(arrays))
    if missing:
        raise PartsFileError(f"parts.npz lacks the array(s) {', '.join(missing)}")
    for name, dtype in EXPECTED_DTYPES.items():
        if arrays[name].dtype != dtype:
            raise PartsFileError(f"parts.npz: {name} is {arrays[name].dtype}, expected {dtype}")
    if arrays["names"].dtype.kind != "U":
        raise PartsFileError(f"parts.npz: names is {arrays['names'].dtype}, expected strings")
    count = len(arrays["names"])
    _check_shape(arrays, "vertices", (None, 3))
    _check_shape(arrays, "faces", (None, 3))
    _check_shape(arrays, "vertex_offsets", (count + 1,))
    _check_shape(arrays, "face_offsets", (count + 1,))
    _check_shape(arrays, "colors", (count, 4))
    _check_shape(arrays, "volumes", (count,))
    _check_offsets(arrays["vertex_offsets"], len(arrays["vertices"]), "vertex_offsets")
    _check_offsets(arrays["face_offsets"], len(arrays["faces"]), "face_offsets")
    if not np.isfinite(arrays["vertices"]).all():
        raise PartsFileError("parts.npz: vertices holds NaN or infinite coordinates")
    _check_face_indices(arrays)


def _check_shape(arrays: dict[str, np.ndarray], name: str, shape: tuple[int | None, ...]) -> None:
    actual = arrays[name].shape
    fits = len(actual) == len(shape) and all(
        want is None or want == have for want, have in zip(shape, actual, strict=True)
    )
    if not fits:
        wanted = "[" + ", ".join("any" if size is None else str(size) for size in shape) + "]"
        raise PartsFileError(f"parts.npz: {name} has shape {list(actual)}, expected {wanted}")


def _check_offsets(offsets: np.ndarray, total: int, name: str) -> None:
    if offsets[0] != 0 or offsets[-1] != total or (np.diff(offsets) < 0).any():
        raise PartsFileError(
            f"parts.npz: {name} must rise from 0 to {total}, got {offsets.tolist()[:8]}..."
        )


def _check_face_indices(arrays: dict[str, np.ndarray]) -> None:
    """Every corner must name a vertex of its own part (indices are local to the part)."""
    faces = arrays["faces"]
    vertex_counts = np.diff(arrays["vertex_offsets"])
    faces_per_part = np.diff(arrays["face_offsets"])
    limit = np.repeat(vertex_counts, faces_per_part)[:, None]
    bad = (faces < 0) | (faces >= limit)
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        part = int(np.searchsorted(arrays["face_offsets"], row, side="right") - 1)
        raise PartsFileError(
            f"parts.npz: face {row} ({faces[row].tolist()}) of part {part} refers to a vertex "
            f"outside the part's {int(vertex_counts[part])} vertices"
        )


def _split_parts(arrays: dict[str, np.ndarray]) -> list[Part]:
    v_offsets, f_offsets = arrays["vertex_offsets"], arrays["face_offsets"]
    return [
        Part(
            name=str(name),
            volume=int(arrays["volumes"][index]),
            vertices=arrays["vertices"][v_offsets[index] : v_offsets[index + 1]],
            faces=arrays["faces"][f_offsets[index] : f_offsets[index + 1]],
            color=tuple(int(c) for c in arrays["colors"][index]),
        )
        for index, name in enumerate(arrays["names"])
    ]
