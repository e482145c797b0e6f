"""The pytest side of the GUI suite: a real Blender (tools/real-blender) on a private screen, with
its own user folder holding the built extension, running the scenarios in in_blender/ and handing
back what they observed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOL = REPO_ROOT / "tools" / "real-blender"
SCENARIOS = Path(__file__).resolve().parent / "in_blender"


def why_not_ready() -> str | None:
    """None when the real Blender can run here, else the reason (tools/real-blender check)."""
    try:
        check = subprocess.run(
            [str(TOOL), "check"], capture_output=True, text=True, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"tools/real-blender check did not run: {error}"
    if check.returncode == 0:
        return None
    return (check.stdout + check.stderr).strip() or f"tools/real-blender check: {check.returncode}"


@dataclass(frozen=True)
class Screen:
    """A private Xvfb screen, so that screenshots show this session's Blender alone."""

    display: str
    pid: int

    @classmethod
    def start(cls) -> Screen:
        started = subprocess.run(
            [str(TOOL), "screen"], capture_output=True, text=True, timeout=60, check=True
        )
        display, pid = started.stdout.split()
        return cls(display, int(pid))

    def stop(self) -> None:
        os.kill(self.pid, signal.SIGTERM)


class BlenderUser:
    """One isolated Blender user (config, extensions, job folders) in `folder`."""

    def __init__(self, folder: Path, screen: Screen, model_config: Path) -> None:
        self.folder = folder
        (folder / "tmp").mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "DISPLAY": screen.display,
            "BLENDER_USER_RESOURCES": str(folder / "user"),
            "TMPDIR": str(folder / "tmp"),
            "PARTPACKER_MODEL_CONFIG": str(model_config),
        }

    def blender(self, *arguments: str, log: Path, timeout: float) -> int:
        """Run the real Blender; its output goes to `log`. The whole run is killed past
        `timeout` (and the test fails with the log's end)."""
        with log.open("w") as output:
            process = subprocess.Popen(
                [str(TOOL), "blender", *arguments],
                cwd=self.folder,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                return process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                raise AssertionError(
                    f"Blender ran past {timeout:.0f} s; the end of {log}:\n{tail(log)}"
                ) from None

    def install(self, extension_zip: Path) -> None:
        log = self.folder / "install.log"
        command = ("--command", "extension", "install-file", "-r", "user_default", "-e")
        code = self.blender(*command, str(extension_zip), log=log, timeout=180)
        assert code == 0 and 'Installed "partpacker"' in log.read_text(), tail(log)

    def new_file(self, path: Path) -> Path:
        """A .blend of Blender's default scene (the cube, the camera, the light): opening a file
        on the command line also keeps the splash screen away."""
        save = f"import bpy; bpy.ops.wm.save_as_mainfile(filepath={str(path)!r})"
        log = self.folder / "new_file.log"
        self.blender("-b", "--factory-startup", "--python-expr", save, log=log, timeout=120)
        assert path.is_file(), tail(log)
        return path

    def run_scenario(
        self, name: str, blend: Path, settings: dict[str, Any], timeout: float
    ) -> tuple[int, dict[str, Any]]:
        """Blender's exit code and the observations of in_blender/NAME.py, whose output
        (screenshots, observations.json, blender.log) lands in FOLDER/NAME."""
        output = self.folder / name
        output.mkdir(parents=True, exist_ok=True)
        settings_file = output / "settings.json"
        settings_file.write_text(json.dumps({**settings, "output_dir": str(output)}))
        log = output / "blender.log"
        script = SCENARIOS / f"{name}.py"
        code = self.blender(
            str(blend), "--python", str(script), "--", str(settings_file), log=log, timeout=timeout
        )
        observations = output / "observations.json"
        assert observations.is_file(), (
            f"{name} wrote no observations; the end of {log}:\n{tail(log)}"
        )
        return code, json.loads(observations.read_text())


def tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def write_transparent_png(path: Path, size: int = 256) -> Path:
    """An RGBA PNG whose alpha is 0 everywhere: nothing in it to model."""
    row = b"\0" + bytes(4 * size)  # filter byte, then transparent black pixels
    header = size.to_bytes(4, "big") * 2 + bytes([8, 6, 0, 0, 0])

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data).to_bytes(4, "big")
        return len(data).to_bytes(4, "big") + kind + data + crc

    png = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row * size)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png)
    return path
