"""build.py makes an extension zip that Blender's own tools accept, and the INSTALLED copy works:
it enables, finds its bundled backend and generates parts with a real worker (tiny weights).

The install runs in a fresh Python process (the development registration of the same add-on in
this session would clash with the installed one): `install_and_generate` below is that process.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

REPO_ROOT = Path(__file__).resolve().parents[2]
BLENDER_PYTHON = sys.executable
INSTALLED_MODULE = "bl_ext.user_default.partpacker"


def repo_version() -> str:
    text = (REPO_ROOT / "backend" / "__init__.py").read_text("utf-8")
    match = re.search(r'^__version__\s*=\s*"([^"]+)"', text, flags=re.M)
    assert match, "backend/__init__.py has no __version__"
    return match[1]


def blender_ext() -> Path:
    """The extension builder of the Blender this test runs in (bpy is scripts/modules/bpy)."""
    import bpy

    builder = Path(bpy.__file__).parents[2] / "addons_core/bl_pkg/cli/blender_ext.py"
    assert builder.is_file(), f"no extension builder at {builder}"
    return builder


@pytest.fixture(scope="module")
def built_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("dist")
    tracked_before = _tracked_state()
    completed = subprocess.run(
        [BLENDER_PYTHON, str(REPO_ROOT / "build.py"), "--output-dir", str(output)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "Install from Disk" in completed.stdout, "build.py must say how to install the zip"
    assert _tracked_state() == tracked_before, "build.py changed checked-in files"
    return output / f"partpacker-{repo_version()}.zip"


def _tracked_state() -> str:
    return subprocess.run(
        ["git", "diff", "--stat", "--", "blender_manifest.toml", "partpacker_blender", "backend"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_checked_in_manifest_matches_the_backend_version() -> None:
    with (REPO_ROOT / "blender_manifest.toml").open("rb") as file:
        manifest = tomllib.load(file)
    assert manifest["version"] == repo_version()
    assert manifest["id"] == "partpacker"
    assert manifest["type"] == "add-on"
    assert manifest["blender_version_min"] == "4.2.0"
    assert not manifest["tagline"].endswith(".")
    assert set(manifest["permissions"]) == {"network", "files"}
    assert all(reason.strip() for reason in manifest["permissions"].values())


def test_nobody_takes_it_for_nvidias() -> None:
    """NVIDIA's name is in the model's: the extension says it is not theirs, links none of it."""
    with (REPO_ROOT / "blender_manifest.toml").open("rb") as file:
        manifest = tomllib.load(file)
    assert "unofficial" in manifest["name"].lower()
    website = manifest.get("website", "")
    assert not any(host in website for host in ("nvidia", "huggingface.co", "nvlabs"))
    (copyright_line,) = manifest["copyright"]
    year, _, holder = copyright_line.partition(" ")
    assert year.isdigit() and int(year) >= 2025 and holder == manifest["maintainer"]


def test_zip_holds_the_addon_and_the_backend_and_nothing_else(built_zip: Path) -> None:
    with zipfile.ZipFile(built_zip) as archive:
        names = set(archive.namelist())
        manifest = tomllib.loads(archive.read("blender_manifest.toml").decode())
        requirements = archive.read("worker/backend/requirements.txt").decode().splitlines()
        constraints = archive.read("worker/backend/constraints.txt")
    assert constraints == (REPO_ROOT / "constraints.txt").read_bytes()
    assert manifest["version"] == repo_version()
    expected = {"blender_manifest.toml", "__init__.py", "preferences.py", "settings.py"}
    expected |= {"setup/operators.py"}
    expected |= {f"worker/backend/{name}" for name in ("__init__.py", "pipeline.py", "PROTOCOL.md")}
    expected |= {f"client/{name}" for name in ("__init__.py", "backend.py", "worker.py")}
    assert expected <= names
    shipped_py = {name for name in names if name.endswith(".py")}
    source_py = {
        path.relative_to(REPO_ROOT / "partpacker_blender").as_posix()
        for path in (REPO_ROOT / "partpacker_blender").rglob("*.py")
    } | {
        f"worker/{path.relative_to(REPO_ROOT).as_posix()}"
        for path in (REPO_ROOT / "backend").rglob("*.py")
    }
    assert shipped_py == source_py
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if n.startswith("tests/") or "/tests/" in n]
    with (REPO_ROOT / "pyproject.toml").open("rb") as file:
        dependencies = tomllib.load(file)["project"]["dependencies"]
    assert [line for line in requirements if not line.startswith("#")] == dependencies


def assert_blender_accepts(zip_path: Path) -> None:
    completed = subprocess.run(
        [BLENDER_PYTHON, str(blender_ext()), "validate", str(zip_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_blender_validates_the_zip(built_zip: Path) -> None:
    assert_blender_accepts(built_zip)


def test_without_blenders_builder_the_same_zip_is_written(
    built_zip: Path, backend_python: Path, tmp_path: Path
) -> None:
    """The backend's Python has no bpy and PATH has no Blender: build.py writes the zip itself,
    with the files Blender's builder puts in, and Blender accepts it."""
    completed = subprocess.run(
        [str(backend_python), str(REPO_ROOT / "build.py"), "--output-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        env={**os.environ, "PATH": str(backend_python.parent)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "builder was not found" in completed.stdout
    own_zip = tmp_path / built_zip.name
    with zipfile.ZipFile(own_zip) as own, zipfile.ZipFile(built_zip) as blenders:
        assert sorted(own.namelist()) == sorted(blenders.namelist())
        assert own.read("blender_manifest.toml") == blenders.read("blender_manifest.toml")
    assert_blender_accepts(own_zip)


def test_installed_zip_enables_and_generates_parts(
    built_zip: Path, backend_python: Path, tiny_weights: Path, tmp_path: Path
) -> None:
    report_file = tmp_path / "report.json"
    env = {
        **os.environ,
        "BLENDER_USER_RESOURCES": str(tmp_path / "blender-user"),
        "PARTPACKER_MODEL_CONFIG": str(tiny_weights / "model_config.json"),
        "HOME": str(tmp_path / "home"),
    }
    (tmp_path / "home").mkdir()
    arguments = [built_zip, backend_python, tiny_weights, REPO_ROOT / "examples/robot.png"]
    call = f"install_and_generate(*{[str(a) for a in [*arguments, report_file]]!r})"
    completed = subprocess.run(
        [BLENDER_PYTHON, "-c", f"from test_build import install_and_generate; {call}"],
        cwd=Path(__file__).parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr[-3000:]
    report = json.loads(report_file.read_text())
    assert report["enabled"] == [True, True]
    installed = Path(report["installed_at"])
    assert installed.is_relative_to(tmp_path / "blender-user"), installed
    assert Path(report["backend_root"]) == installed / "worker", "it starts its bundled backend"
    assert Path(report["constraints"]) == installed / "worker/backend/constraints.txt"
    assert report["operator"] == ["FINISHED"]
    assert report["parts"] >= 1
    assert report["parts_under_one_empty"]
    assert report["added_files_in_addon_folder"] == []
    jobs = list((tmp_path / "home" / "PartPacker").glob("*/parts.npz"))
    assert len(jobs) == 1, "an unsaved file's result, outside the extension's folders"


def install_and_generate(
    zip_path: str, backend_python: str, weights: str, image: str, report_path: str
) -> None:
    """Runs in a fresh process: install the zip the way Blender does, generate, report."""
    import bpy

    addon_utils = importlib.import_module("addon_utils")  # on sys.path once bpy is imported

    bpy.ops.extensions.package_install_files(
        filepath=zip_path, repo="user_default", enable_on_install=True
    )
    enabled = list(addon_utils.check(INSTALLED_MODULE))
    package = sys.modules[INSTALLED_MODULE]
    installed_at = Path(package.__file__).parent
    files_before = _files_outside_pycache(installed_at)
    prefs = bpy.context.preferences.addons[INSTALLED_MODULE].preferences
    prefs.backend_python = backend_python
    prefs.weights_source = "FOLDER"
    prefs.weights_dir = weights
    prefs.device = "cpu"
    objects_before = {o.name for o in bpy.data.objects}
    try:
        result = bpy.ops.partpacker.generate(
            image_path=image, grid_res=32, steps=2, seed=5, randomize_seed=False
        )
        new_objects = [o for o in bpy.data.objects if o.name not in objects_before]
        empties = [o for o in new_objects if o.type == "EMPTY"]
        meshes = [o for o in new_objects if o.type == "MESH"]
        report = {
            "enabled": enabled,
            "installed_at": str(installed_at),
            "backend_root": str(package.settings.backend_root()),
            "constraints": str(
                package.setup.environment.backend_constraints(package.settings.backend_root()).path
            ),
            "operator": sorted(result),
            "parts": len(meshes),
            "parts_under_one_empty": len(empties) == 1
            and all(o.parent == empties[0] and o.data.materials for o in meshes),
            "added_files_in_addon_folder": sorted(
                _files_outside_pycache(installed_at) - files_before
            ),
        }
    finally:
        # bpy 4.5 hangs at exit while an add-on's classes are registered.
        addon_utils.disable(INSTALLED_MODULE, default_set=True)
    Path(report_path).write_text(json.dumps(report))


def _files_outside_pycache(folder: Path) -> set[str]:
    return {
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
