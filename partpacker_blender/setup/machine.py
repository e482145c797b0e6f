"""What setup needs to know about this computer, read once per setup into plain data. Every
decision made from it (torch_build.py, python_finder.py, path_limits.py) is a plain function of
these values, so the Windows and macOS cases are tested on any machine; only the `read_*`
functions below look at the real system. They run subprocesses: call them off the main thread
(runner.Planning). No bpy.
"""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..child_process import NO_CONSOLE_WINDOW

NVIDIA_SMI_TIMEOUT = 30.0
QUICK_TIMEOUT = 5.0
ARCHITECTURES = {"amd64": "x86_64", "x64": "x86_64", "x86_64": "x86_64", "aarch64": "arm64"}
"""platform.machine()'s names per system, to one name each ("arm64" stays "arm64")."""
LONG_PATHS_KEY = r"SYSTEM\CurrentControlSet\Control\FileSystem"


@dataclass(frozen=True)
class Machine:
    system: str
    """platform.system(): "Windows", "Darwin", "Linux"."""
    architecture: str
    """The hardware's, not the process's: "arm64" on Apple silicon even under Rosetta."""
    rosetta: bool = False
    """macOS: Blender itself runs as Intel code under Rosetta (and starts Pythons as such)."""
    macos_version: tuple[int, int] | None = None
    cuda_version: tuple[int, int] | None = None
    """The newest CUDA the NVIDIA driver supports (nvidia-smi); None: no NVIDIA driver."""
    long_paths_enabled: bool | None = None
    """Windows: the LongPathsEnabled registry value is 1; None: not Windows, or unreadable."""
    developer_tools: bool = True
    """macOS: Xcode or its Command Line Tools are installed, so /usr/bin/python3 is a Python
    and not the stub that offers to install them (in a dialog)."""


def architecture_name(machine: str) -> str:
    return ARCHITECTURES.get(machine.lower(), machine.lower())


def hardware_architecture(system: str, process_machine: str, translated: bool) -> str:
    """The hardware's architecture from the process's: a process under Rosetta (macOS's
    sysctl.proc_translated is 1) runs x86_64 code on Apple silicon."""
    name = architecture_name(process_machine)
    return "arm64" if system == "Darwin" and translated and name == "x86_64" else name


def parse_cuda_version(nvidia_smi_output: str) -> tuple[int, int] | None:
    match = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", nvidia_smi_output)
    return (int(match[1]), int(match[2])) if match else None


def parse_macos_version(release: str) -> tuple[int, int] | None:
    """platform.mac_ver()'s release ("13.6.1", "14.0"; "" elsewhere) as (major, minor)."""
    match = re.match(r"(\d+)\.(\d+)", release)
    return (int(match[1]), int(match[2])) if match else None


def read_machine() -> Machine:
    system = platform.system()
    translated = system == "Darwin" and read_rosetta_translation()
    return Machine(
        system=system,
        architecture=hardware_architecture(system, platform.machine(), translated),
        rosetta=translated,
        macos_version=parse_macos_version(platform.mac_ver()[0]) if system == "Darwin" else None,
        cuda_version=read_cuda_version() if system != "Darwin" else None,
        long_paths_enabled=read_long_paths_enabled() if system == "Windows" else None,
        developer_tools=read_developer_tools() if system == "Darwin" else True,
    )


def read_cuda_version() -> tuple[int, int] | None:
    """The highest CUDA version the NVIDIA driver supports, as nvidia-smi reports it."""
    command = shutil.which("nvidia-smi")
    completed = _run([command], NVIDIA_SMI_TIMEOUT) if command else None
    if completed is None or completed.returncode != 0:
        return None
    return parse_cuda_version(completed.stdout)


def read_rosetta_translation() -> bool:
    completed = _run(["sysctl", "-n", "sysctl.proc_translated"], QUICK_TIMEOUT)
    return completed is not None and completed.stdout.strip() == "1"


def read_developer_tools() -> bool:
    """`xcode-select -p` names the active developer folder; it fails while none is installed
    (and, unlike /usr/bin/python3, never opens the installer's dialog)."""
    completed = _run(["xcode-select", "-p"], QUICK_TIMEOUT)
    if completed is None or completed.returncode != 0:
        return False
    return Path(completed.stdout.strip()).is_dir()


def read_long_paths_enabled() -> bool:
    import winreg  # Windows only

    try:
        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, LONG_PATHS_KEY) as key:
            value, _kind = winreg.QueryValueEx(key, "LongPathsEnabled")
    except OSError:  # the value is absent where it was never set: long paths are off
        return False
    return value == 1


def _run(command: list[str], timeout: float) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            creationflags=NO_CONSOLE_WINDOW,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
