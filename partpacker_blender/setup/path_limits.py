"""Windows' 260-character path limit and the backend's environment: PyTorch's wheel holds files
deep enough that, under a long environment folder, pip fails midway unless Windows' long paths
are turned on. A plain function of the folder and the machine's facts (machine.py). No bpy.
"""

from __future__ import annotations

from pathlib import PureWindowsPath

from ..problems import Problem
from .machine import Machine

WINDOWS_MAX_PATH = 259
"""Characters of a whole path without long paths (MAX_PATH, 260, counts the final NUL)."""
SITE_PACKAGES = PureWindowsPath("Lib", "site-packages")
DEEPEST_PACKAGE_FILE = 180
"""Characters of the longest path inside site-packages that the backend's packages install.
Measured: 171 (a licence file under torch-2.13.0+cpu.dist-info); the rest is room for a longer
build tag (+cu130) and a few more characters in a later release. A test measures it again in
the backend environment the tests run with and fails if this is short."""
SHORT_FOLDER_EXAMPLE = r"C:\PartPacker"


class PathTooLong(Problem):
    """The environment folder is too deep for Windows' path limit."""


def deepest_path_length(env_dir: PureWindowsPath) -> int:
    """The length of the longest path pip will write under `env_dir` on Windows."""
    return len(str(env_dir / SITE_PACKAGES)) + 1 + DEEPEST_PACKAGE_FILE


def environment_path_problem(env_dir: PureWindowsPath, machine: Machine) -> PathTooLong | None:
    """Why pip would fail to install the backend's packages into `env_dir`, or None."""
    if machine.system != "Windows" or machine.long_paths_enabled:
        return None
    deepest = deepest_path_length(env_dir)
    if deepest <= WINDOWS_MAX_PATH:
        return None
    return PathTooLong(
        f"the environment folder {env_dir} is too long for Windows: PyTorch's files in it would "
        f"have paths of up to {deepest} characters, and Windows allows {WINDOWS_MAX_PATH} "
        "while its long paths are off",
        f"choose a shorter Environment Folder in the add-on's preferences (such as "
        f"{SHORT_FOLDER_EXAMPLE}), or turn on long paths: as an "
        'administrator, set "Enable Win32 long paths" in the Group Policy Editor (or the '
        "registry value LongPathsEnabled to 1), then set up again",
    )
