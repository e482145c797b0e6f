"""How the add-on starts other Pythons (the backend's, and those setup probes): without
Blender's own Python settings, with unbuffered output, and without a console window on Windows."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

NO_CONSOLE_WINDOW = getattr(subprocess, "CREATE_NO_WINDOW", 0)
"""Windows opens a console window for each child of a GUI program unless told not to."""
BLENDER_PYTHON_SETTINGS = ("PYTHONHOME", "PYTHONPATH")


def other_python_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment for a different Python, lines arriving as they are printed."""
    env = {k: v for k, v in os.environ.items() if k not in BLENDER_PYTHON_SETTINGS}
    return {**env, **(extra or {}), "PYTHONUNBUFFERED": "1"}


def backend_environment(backend_root: Path, extra: dict[str, str]) -> dict[str, str]:
    """For the backend's Python: the backend package importable from `backend_root`, and no
    bytecode written into the (installed) extension folder."""
    return other_python_environment(
        {**extra, "PYTHONPATH": str(backend_root), "PYTHONDONTWRITEBYTECODE": "1"}
    )
