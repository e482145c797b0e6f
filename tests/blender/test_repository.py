"""`build.py --repo DIR` makes a remote extension repository: the zip and the index Blender's own
tool writes for it, which describes that zip (its size and hash) with the manifest's fields.
tests/gui/test_remote_repository.py has a real Blender install from it and update."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib
from addon_setup import REPO_ROOT

MANIFEST_FIELDS = (
    "id", "name", "tagline", "version", "type", "maintainer", "license", "copyright",
    "blender_version_min", "tags", "permissions",
)  # fmt: skip


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("repo")
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "build.py"), "--repo", str(folder)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "Add Remote Repository" in completed.stdout, "build.py says how to use it"
    return folder


def test_the_index_describes_the_zip_beside_it(repository: Path) -> None:
    index = json.loads((repository / "index.json").read_text())
    (zip_path,) = repository.glob("partpacker-*.zip")
    (entry,) = index["data"]
    assert index["version"] == "v1" and index["blocklist"] == []
    assert entry["archive_url"] == f"./{zip_path.name}"
    assert entry["archive_size"] == zip_path.stat().st_size
    assert entry["archive_hash"] == f"sha256:{hashlib.sha256(zip_path.read_bytes()).hexdigest()}"
    with zipfile.ZipFile(zip_path) as archive:
        manifest = tomllib.loads(archive.read("blender_manifest.toml").decode())
    assert {field: entry.get(field) for field in MANIFEST_FIELDS} == {
        field: manifest.get(field) for field in MANIFEST_FIELDS
    }
    assert "unofficial" in entry["name"].lower()
    assert "partpacker" in (repository / "index.html").read_text().lower()


def test_a_repository_needs_blenders_tool(backend_python: Path, tmp_path: Path) -> None:
    """The backend's Python has no bpy and PATH has no Blender: no index can be written, and
    build.py says so instead of writing half a repository."""
    completed = subprocess.run(
        [str(backend_python), str(REPO_ROOT / "build.py"), "--repo", str(tmp_path / "repo")],
        cwd=REPO_ROOT,
        env={**os.environ, "PATH": str(backend_python.parent)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2
    assert "--repo needs Blender's extension tool" in completed.stderr
    assert not (tmp_path / "repo").exists()


def with_version(built: Path, version: str, folder: Path) -> Path:
    """The built zip as another version's (only its manifest's version differs)."""
    with zipfile.ZipFile(built) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    manifest = files["blender_manifest.toml"].decode()
    files["blender_manifest.toml"] = re.sub(
        r'^version = "[^"]*"', f'version = "{version}"', manifest, flags=re.M
    ).encode()
    copy = folder / f"partpacker-{version}.zip"
    with zipfile.ZipFile(copy, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return copy


def test_a_release_replaces_the_earlier_zip(repository: Path, tmp_path: Path) -> None:
    """Blender's index offers one version per Blender range: the earlier zip must go."""
    sys.path.insert(0, str(REPO_ROOT))
    import build

    (built,) = repository.glob("partpacker-*.zip")
    published = tmp_path / "published"
    published.mkdir()
    with_version(built, "0.0.1", published)
    (published / "notes.txt").write_text("the publisher's own file")
    builder = build.find_builder()
    assert builder is not None
    build.publish(built, published, builder)
    assert sorted(path.name for path in published.glob("*.zip")) == [built.name]
    assert (published / "notes.txt").read_text() == "the publisher's own file"
    (entry,) = json.loads((published / "index.json").read_text())["data"]
    assert entry["archive_url"] == f"./{built.name}"
