"""Enabling the add-on in the bpy module as an installed extension: a temporary extension
repository holds a link named `partpacker` to partpacker_blender/, so the add-on runs as
`bl_ext.partpacker_tests.partpacker` with relative imports only. Set BLENDER_USER_RESOURCES
before importing this module."""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import ModuleType

import bpy

REPO_ROOT = Path(__file__).resolve().parents[2]
REPO_NAME = "partpacker_tests"
ADDON_MODULE = f"bl_ext.{REPO_NAME}.partpacker"


def enable_addon() -> ModuleType:
    import addon_utils  # on sys.path once bpy is imported

    repositories = bpy.context.preferences.extensions.repos
    if REPO_NAME not in {repository.module for repository in repositories}:
        folder = Path(tempfile.mkdtemp(prefix="partpacker-extensions-"))
        link = folder / "partpacker"
        link.symlink_to(REPO_ROOT / "partpacker_blender", target_is_directory=True)
        repositories.new(
            name=REPO_NAME, module=REPO_NAME, custom_directory=str(folder), source="USER"
        )
    module = addon_utils.enable(ADDON_MODULE, default_set=True, handle_error=_raise)
    assert module is not None, f"{ADDON_MODULE} did not enable"
    return module


def disable_addon() -> None:
    import addon_utils

    addon_utils.disable(ADDON_MODULE, default_set=True, handle_error=_raise)


def addon_preferences():
    return bpy.context.preferences.addons[ADDON_MODULE].preferences


def _raise(error: Exception) -> None:
    raise error
