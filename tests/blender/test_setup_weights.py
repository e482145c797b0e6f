"""The weights: the add-on's table agrees with the backend's, and Download Weights fetches them
through the backend's own command (here from an offline cache or folder) and checks them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import bpy
import pytest
from addon_setup import REPO_ROOT

HUB_FILES = (
    ("nvidia/PartPacker", "flow.pt"),
    ("nvidia/PartPacker", "vae.pt"),
    ("facebook/dinov2-giant", "model.safetensors"),
)


def test_weight_table_agrees_with_the_backends(setup_modules, backend_python: Path) -> None:
    code = (
        "import json; from backend.weights import WEIGHT_SOURCES as s; "
        "print(json.dumps([[w.repo_id, w.filename, w.approx_bytes] for w in s]))"
    )
    completed = subprocess.run(
        [str(backend_python), "-c", code], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr
    backend = json.loads(completed.stdout)
    ours = setup_modules.weights.WEIGHT_FILES
    assert [[w.repo_id, w.filename] for w in ours] == [entry[:2] for entry in backend]
    for weight, (_, _, size) in zip(ours, backend, strict=True):
        assert abs(weight.approx_bytes - size) < 0.05 * size, weight.filename
    assert [w.repo_id + "/" + w.filename for w in ours] == [f"{r}/{f}" for r, f in HUB_FILES]


def offline_hub_cache(root: Path, weights: Path, leave_out: str = "") -> Path:
    """A Hugging Face cache as huggingface_hub lays it out (refs/main -> snapshots/<commit>)."""
    for index, (repo_id, filename) in enumerate(HUB_FILES):
        if filename == leave_out:
            continue
        repo = root / f"models--{repo_id.replace('/', '--')}"
        commit = f"{index + 1:040x}" if repo_id == "facebook/dinov2-giant" else "a" * 40
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(commit)
        snapshot = repo / "snapshots" / commit
        snapshot.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(weights / filename, snapshot / filename)
    return root


@pytest.fixture
def offline_backend(addon, prefs, online, backend_python, tiny_weights, monkeypatch):
    """The backend with the tiny weights' model sizes; the hub unreachable (HF_HUB_OFFLINE)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PARTPACKER_MODEL_CONFIG", str(tiny_weights / "model_config.json"))
    prefs.backend_python = str(backend_python)
    prefs.device = "cpu"
    addon.setup.backend_check.current().report = None
    yield prefs
    prefs.weights_source, prefs.cache_dir, prefs.weights_dir = "HF_CACHE", "", ""


def findings_about(report, filename: str) -> list:
    return [finding for finding in report.findings if filename in finding.text]


def test_download_finds_the_weights_in_an_offline_cache_and_checks_them(
    addon, offline_backend, tiny_weights: Path, tmp_path: Path
) -> None:
    offline_backend.weights_source = "HF_CACHE"
    offline_backend.cache_dir = str(offline_hub_cache(tmp_path / "hub", tiny_weights))
    assert bpy.ops.partpacker.download_weights() == {"FINISHED"}
    report = addon.setup.backend_check.current().report
    assert report is not None and report.ok, report
    for _, filename in HUB_FILES:
        about = findings_about(report, filename)
        assert about and all(finding.ok for finding in about), (filename, report)


def test_a_file_missing_from_the_offline_cache_is_named(
    addon, offline_backend, tiny_weights: Path, tmp_path: Path
) -> None:
    offline_backend.weights_source = "HF_CACHE"
    cache = offline_hub_cache(tmp_path / "hub", tiny_weights, leave_out="vae.pt")
    offline_backend.cache_dir = str(cache)
    with pytest.raises(RuntimeError, match=r"vae\.pt"):
        bpy.ops.partpacker.download_weights()
    last = addon.setup.state.current().last
    assert not last.status.succeeded and "Download the weights" in last.status.error


def test_local_folder_missing_and_corrupt_files_are_reported(
    addon, offline_backend, tiny_weights: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "weights"
    shutil.copytree(tiny_weights, folder)
    offline_backend.weights_source = "FOLDER"
    offline_backend.weights_dir = str(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(RuntimeError, match=r"model\.safetensors"):
        bpy.ops.partpacker.download_weights()
    shutil.copyfile(tiny_weights / "model.safetensors", folder / "model.safetensors")
    flow = folder / "flow.pt"
    flow.write_bytes(flow.read_bytes()[: flow.stat().st_size // 2])
    assert bpy.ops.partpacker.download_weights() == {"FINISHED"}
    report = addon.setup.backend_check.current().report
    assert report is not None and not report.ok
    broken = findings_about(report, "flow.pt")
    assert broken and not any(finding.ok for finding in broken), report
    assert all(finding.ok for finding in findings_about(report, "vae.pt")), report
