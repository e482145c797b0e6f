"""The GUI suite: the built extension in a real Blender 4.3 window (tools/real-blender), driven by
scenario scripts (in_blender/) through bpy.app.timers, with tiny random weights on the CPU.

Everything a run leaves (screenshots, observations.json, Blender's log, the user folder with the
job folders) is in outputs/gui/, or $PARTPACKER_GUI_OUTPUT (under the repository or /tmp: the
folders Blender's chroot sees). Without a real Blender every test fails and says why: run
`tools/real-blender setup` as root (`python3 dev.py test` runs this suite only where one is).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from real_blender import REPO_ROOT, BlenderUser, Screen, why_not_ready, write_transparent_png

BACKEND_PYTHON = Path(
    os.environ.get("PARTPACKER_BACKEND_PYTHON", REPO_ROOT / ".venv" / "backend" / "bin" / "python")
)


@pytest.fixture(scope="session")
def output_folder() -> Path:
    folder = Path(os.environ.get("PARTPACKER_GUI_OUTPUT", REPO_ROOT / "outputs" / "gui"))
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder.resolve()


@pytest.fixture(scope="session")
def screen() -> Iterator[Screen]:
    reason = why_not_ready()
    if reason is not None:
        pytest.fail(f"no real Blender here: {reason}", pytrace=False)
    started = Screen.start()
    yield started
    started.stop()


@pytest.fixture(scope="session")
def extension_zip(output_folder: Path) -> Path:
    """The zip a user installs, built as the README says (Blender's extension builder from the
    bpy module of the Python that runs this suite)."""
    dist = output_folder / "dist"
    dist.mkdir()
    build = [sys.executable, str(REPO_ROOT / "build.py"), "--output-dir", str(dist)]
    subprocess.run(build, cwd=REPO_ROOT, check=True, capture_output=True)
    (zip_file,) = dist.glob("partpacker-*.zip")
    return zip_file


@pytest.fixture(scope="session")
def tiny_weights(output_folder: Path) -> Path:
    assert BACKEND_PYTHON.is_file(), (
        f"no backend Python at {BACKEND_PYTHON}: run python3 dev.py test"
    )
    folder = output_folder / "tiny_weights"
    writer = [str(BACKEND_PYTHON), str(REPO_ROOT / "tests" / "tiny_weights.py"), str(folder)]
    subprocess.run(writer, cwd=REPO_ROOT, check=True, capture_output=True)
    assert (folder / "model_config.json").is_file()
    return folder


@pytest.fixture(scope="session")
def blender_user(output_folder, screen, extension_zip, tiny_weights) -> BlenderUser:
    """A Blender user with the extension installed by Blender's own installer."""
    user = BlenderUser(output_folder, screen, tiny_weights / "model_config.json")
    user.install(extension_zip)
    return user


@pytest.fixture(scope="session")
def default_scene(blender_user: BlenderUser, output_folder: Path) -> Path:
    return blender_user.new_file(output_folder / "start.blend")


@pytest.fixture(scope="session")
def scenario_settings(output_folder: Path, tiny_weights: Path) -> dict[str, str]:
    """What every scenario script is told (settings.json beside its output)."""
    return {
        "backend_python": str(BACKEND_PYTHON),
        "weights_dir": str(tiny_weights),
        "robot_image": str(REPO_ROOT / "examples" / "robot.png"),
        "missing_image": str(output_folder / "no-such-photo.png"),
        "transparent_image": str(write_transparent_png(output_folder / "transparent.png")),
    }
