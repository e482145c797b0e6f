"""The remote extension repository `build.py --repo` writes, used as a person would use its
address: a real Blender 4.3 (tools/real-blender) adds it, installs the extension from it, and
later gets the next version as an update. The folder is served over HTTP on 127.0.0.1, the way
a static web host would serve it. Needs no screen: Blender's `--command extension` runs headless.
"""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomllib
from real_blender import REPO_ROOT, TOOL, why_not_ready

REPO_ID = "partpacker_remote"


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reason = why_not_ready()
    if reason is not None:
        pytest.fail(f"no real Blender here: {reason}", pytrace=False)
    folder = tmp_path_factory.mktemp("published")
    build = [sys.executable, str(REPO_ROOT / "build.py"), "--repo", str(folder)]
    subprocess.run(build, cwd=REPO_ROOT, check=True, capture_output=True, timeout=300)
    return folder


@pytest.fixture
def address(repository: Path) -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(repository))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.json"
    server.shutdown()
    server.server_close()


def blender(user: Path, *arguments: str) -> str:
    """Blender's output (it must succeed); online access on, as a user allows it to download."""
    completed = subprocess.run(
        [str(TOOL), "blender", "--online-mode", "--command", "extension", *arguments],
        cwd=user,
        env={**os.environ, "BLENDER_USER_RESOURCES": str(user / "config")},
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-3000:]
    return output


def installed_version(user: Path) -> str:
    manifest = user / "config" / "extensions" / REPO_ID / "partpacker" / "blender_manifest.toml"
    return tomllib.loads(manifest.read_text())["version"]


def publish_next_version(repository: Path, scratch: Path) -> str:
    """What the next release does (build.py's publish), with the built zip's version raised."""
    sys.path.insert(0, str(REPO_ROOT))
    import build

    (built,) = repository.glob("partpacker-*.zip")
    with zipfile.ZipFile(built) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    manifest = files["blender_manifest.toml"].decode()
    version = tomllib.loads(manifest)["version"]
    major, minor, patch = version.split(".")
    newer = f"{major}.{minor}.{int(patch) + 1}"
    files["blender_manifest.toml"] = build.stamped_manifest(manifest, newer).encode()
    next_zip = scratch / f"partpacker-{newer}.zip"
    with zipfile.ZipFile(next_zip, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    builder = build.find_builder()
    assert builder is not None
    build.publish(next_zip, repository, builder)
    return newer


def test_blender_installs_from_the_address_and_updates(
    repository: Path, address: str, tmp_path: Path
) -> None:
    user = tmp_path / "user"
    user.mkdir()
    name = "PartPacker (unofficial)"
    blender(user, "repo-add", "--clear-all", "--name", name, "--url", address, REPO_ID)
    listed = blender(user, "list", "--sync")
    assert f'Repository: "{name}" (id={REPO_ID})' in listed
    assert 'partpacker: "PartPacker (unofficial)"' in listed
    assert 'Installed "partpacker"' in blender(user, "install", "--sync", "--enable", "partpacker")
    (first,) = repository.glob("partpacker-*.zip")
    assert installed_version(user) == first.stem.removeprefix("partpacker-")

    newer = publish_next_version(repository, tmp_path)
    blender(user, "sync")
    blender(user, "update")
    assert installed_version(user) == newer
