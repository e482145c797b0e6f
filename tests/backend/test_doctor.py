"""`doctor` on broken weight folders: every problem names its file and is a weights problem
(exit code 3), never an internal error; and its claims about GPU memory hold."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from damage import damage_a_stored_tensor, lengthen_safetensors_header

from backend.doctor import COMFORTABLE_GPU_BYTES, examine
from backend.pipeline import ModelConfigs, PipelineSettings

REPO = Path(__file__).resolve().parents[2]
EXIT_WEIGHTS = 3
FILES = ("flow.pt", "vae.pt", "model.safetensors")


@pytest.fixture
def weights(tiny_weights: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "weights"
    folder.mkdir()
    for name in FILES:
        shutil.copy2(tiny_weights / name, folder / name)
    return folder


def unreadable_for_the_user(path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their permissions (the I/O-error case covers it)")
    path.chmod(0)


def unreadable_for_everyone(path: Path) -> None:
    """Reading /proc/self/mem at offset 0 fails with an I/O error, for root too."""
    if not Path("/proc/self/mem").exists():
        pytest.skip("needs Linux's /proc")
    path.unlink()
    path.symlink_to("/proc/self/mem")


def folder_instead(path: Path) -> None:
    path.unlink()
    path.mkdir()


def pickle_named_safetensors(path: Path) -> None:
    shutil.copy2(path.with_name("vae.pt"), path)


PROBLEMS: dict[str, tuple[str, Callable[[Path], object], str]] = {
    "no permission": ("flow.pt", unreadable_for_the_user, "cannot read"),
    "I/O error": ("flow.pt", unreadable_for_everyone, "cannot read"),
    "header longer than the file": (
        "model.safetensors",
        lengthen_safetensors_header,
        "truncated or corrupt",
    ),
    "pickle named model.safetensors": (
        "model.safetensors",
        pickle_named_safetensors,
        "PyTorch pickle",
    ),
    "folder where a file should be": ("vae.pt", folder_instead, "is a folder"),
    "damaged tensor in flow.pt": ("flow.pt", damage_a_stored_tensor, "fails its CRC check"),
    "damaged tensor in vae.pt": ("vae.pt", damage_a_stored_tensor, "fails its CRC check"),
}


@pytest.mark.parametrize("problem", PROBLEMS)
def test_each_weight_problem_names_its_file(
    weights: Path, tiny_weights: Path, problem: str
) -> None:
    name, damage, phrase = PROBLEMS[problem]
    damage(weights / name)
    report = examine(
        PipelineSettings(
            weights_dir=weights, model_config=tiny_weights / "model_config.json", device="cpu"
        )
    )
    failed = [check for check in report.checks if not check.ok]
    assert len(failed) == 1, failed
    assert str(weights / name) in failed[0].message
    assert phrase in failed[0].message
    assert "internal" not in failed[0].message
    assert failed[0].hint
    assert report.exit_code == EXIT_WEIGHTS


@pytest.mark.parametrize("command", ["doctor", "generate"])
def test_damaged_tensor_bytes_stop_doctor_and_generation_with_exit_code_3(
    weights: Path, tiny_flags: list[str], object_image: Path, tmp_path: Path, command: str
) -> None:
    damage_a_stored_tensor(weights / "vae.pt")
    flags = [*tiny_flags]
    flags[flags.index("--weights-dir") + 1] = str(weights)
    job = [] if command == "doctor" else [str(object_image), "-o", str(tmp_path / "out")]
    completed = subprocess.run(
        [sys.executable, "-m", "backend", command, *job, *flags],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == EXIT_WEIGHTS, completed.stdout + completed.stderr
    assert f"{weights / 'vae.pt'}" in completed.stdout + completed.stderr
    assert "CRC" in completed.stdout + completed.stderr


def bf16_bytes(network: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in network.parameters()) * 2


def test_the_stated_weight_sizes_hold() -> None:
    """COMFORTABLE_GPU_BYTES' docstring: the full-size networks take about 5.4 GB in bf16;
    PipelineSettings.low_memory's: the largest of them, the DiT, 2.5 GB."""
    models = ModelConfigs().build_on_meta()
    sizes = {name: bf16_bytes(getattr(models, name)) for name in ("dinov2", "dit", "vae")}
    assert 5.35e9 < sum(sizes.values()) < 5.45e9
    assert sum(sizes.values()) < COMFORTABLE_GPU_BYTES
    assert max(sizes, key=sizes.__getitem__) == "dit"
    assert 2.45e9 < sizes["dit"] < 2.55e9
