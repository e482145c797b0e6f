"""A finished job folder (backend/PROTOCOL.md "Job folder"): its files, what made them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bpy

from .image_input import safe_stem
from .importer import ImportedParts, ImportOptions, import_parts
from .result_paths import stored_path


class JobFolderError(ValueError):
    """The folder is not a PartPacker job folder."""


@dataclass(frozen=True)
class JobFolder:
    path: Path
    record: dict[str, Any]
    """result.json as written by the backend ({} when the folder has none)."""

    @property
    def parts_file(self) -> Path:
        """parts.npz; a remote job's folder has the server's parts.glb only."""
        glb = self.path / "parts.glb"
        return glb if glb.is_file() and not (self.path / "parts.npz").is_file() else self.npz

    @property
    def npz(self) -> Path:
        return self.path / "parts.npz"

    @property
    def stem(self) -> str:
        """The input image's name, as generation names objects after it."""
        image = self.record.get("image")
        return safe_stem(Path(image).name if isinstance(image, str) and image else self.path.name)

    @property
    def seed(self) -> int | None:
        seed = self.record.get("seed")
        return seed if isinstance(seed, int) else None

    def metadata(self) -> dict[str, Any]:
        """What made these parts, JSON-friendly, for the custom properties of the result; its
        paths as the .blend file keeps them (result_paths.py)."""
        image = self.record.get("image")
        return {
            "image": stored_path(image) if isinstance(image, str) and image else "",
            "seed": self.seed,
            "params": self._object("params"),
            "timings": self._object("timings"),
            "backend_version": self._object("versions").get("backend", ""),
            "device": self._object("device").get("device_name", ""),
            "backend": self.record.get("backend", "This computer"),
            "server": self.record.get("server", ""),
            "job_folder": stored_path(self.path),
        }

    def _object(self, key: str) -> dict[str, Any]:
        """A JSON object of result.json; {} when missing or of another kind (a hand edit)."""
        value = self.record.get(key)
        return value if isinstance(value, dict) else {}


def read_job_folder(folder: Path) -> JobFolder:
    folder = Path(folder)
    if not any((folder / name).is_file() for name in ("parts.npz", "parts.glb")):
        raise JobFolderError(
            f"{folder} holds no parts.npz or parts.glb: it is not a PartPacker job folder"
        )
    result_json = folder / "result.json"
    if not result_json.is_file():
        return JobFolder(folder, {})
    try:
        record = json.loads(result_json.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise JobFolderError(f"cannot read {result_json}: {error}") from error
    if not isinstance(record, dict):
        raise JobFolderError(f"{result_json} does not hold a JSON object")
    return JobFolder(folder, record)


def import_job_folder(
    folder: Path, scene: bpy.types.Scene, options: ImportOptions, stem: str | None = None
) -> ImportedParts:
    """The folder's parts as objects in `scene`, named after `stem` (default: the image's).
    Raises JobFolderError and parts_file.PartsFileError; nothing is created then."""
    job = read_job_folder(folder)
    return import_parts(
        job.parts_file,
        scene,
        stem=stem or job.stem,
        seed=job.seed,
        options=options,
        metadata=job.metadata(),
    )
