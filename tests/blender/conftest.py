"""Fixtures: the add-on enabled once per session in the real bpy module (addon_setup.py), an
empty file around each test, a backend worker with tiny random weights, the setup modules, and
Blender's online access for one test."""

from __future__ import annotations

import importlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="partpacker-blender-user-")

import bpy  # bpy must see BLENDER_USER_RESOURCES first
from addon_setup import REPO_ROOT, addon_preferences, disable_addon, enable_addon

DEFAULT_BACKEND_PYTHON = REPO_ROOT / ".venv" / "backend" / "bin" / "python"
"""The environment `python3 dev.py test` builds."""


@pytest.fixture(scope="session")
def addon() -> Iterator[ModuleType]:
    """The enabled add-on's package; disabled at the end (bpy 4.5 hangs at exit otherwise)."""
    yield enable_addon()
    disable_addon()


@pytest.fixture
def prefs(addon):
    return addon_preferences()


@pytest.fixture(autouse=True)
def empty_file(addon) -> Iterator[None]:
    """Every test starts from an empty file (read_homefile keeps the add-on enabled)."""
    bpy.ops.wm.read_homefile(use_empty=True)
    yield
    bpy.ops.wm.read_homefile(use_empty=True)


@pytest.fixture(scope="session")
def backend_python() -> Path:
    python = Path(os.environ.get("PARTPACKER_BACKEND_PYTHON", DEFAULT_BACKEND_PYTHON))
    assert python.is_file(), (
        f"no backend Python at {python}: run `python3 dev.py test` or set PARTPACKER_BACKEND_PYTHON"
    )
    return python


@pytest.fixture(scope="session")
def tiny_weights(backend_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny random weights in the official layout, written once by tests/tiny_weights.py."""
    folder = tmp_path_factory.mktemp("tiny_weights")
    subprocess.run(
        [str(backend_python), str(REPO_ROOT / "tests" / "tiny_weights.py"), str(folder)],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    assert (folder / "model_config.json").is_file()
    return folder


@pytest.fixture(scope="session")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The user's home folder while the add-on runs: results of unsaved files go into its
    Documents folder."""
    folder = tmp_path_factory.mktemp("home")
    (folder / "Documents").mkdir()
    return folder


@pytest.fixture
def backend(addon, prefs, backend_python: Path, tiny_weights: Path, home, monkeypatch) -> Iterator:
    """Preferences pointing at a CPU worker with the tiny weights; the session's worker is
    reused across tests while these settings stay the same."""
    monkeypatch.setenv("PARTPACKER_MODEL_CONFIG", str(tiny_weights / "model_config.json"))
    monkeypatch.setenv("HOME", str(home))
    prefs.backend_python = str(backend_python)
    prefs.weights_source = "FOLDER"
    prefs.weights_dir = str(tiny_weights)
    prefs.device = "cpu"
    prefs.hang_timeout = 600
    yield addon.session.current()
    current = addon.session.current()
    if current.task is not None:
        current.cancel()
        current.wait(current.task)


@pytest.fixture
def setup_modules(addon) -> ModuleType:
    """The setup subpackage's modules as attributes: setup_modules.runner, .environment, ..."""
    namespace = ModuleType("setup_modules")
    names = ("environment", "machine", "path_limits", "planning", "python_finder", "runner")
    for name in (*names, "state", "torch_build", "weights"):
        setattr(namespace, name, importlib.import_module(f"{addon.__name__}.setup.{name}"))
    return namespace


@pytest.fixture
def online(monkeypatch):
    """Blender's "Allow Online Access" on for one test (it is off in the bpy module)."""
    system = bpy.context.preferences.system
    monkeypatch.setattr(system, "use_online_access", True)
    assert bpy.app.online_access
