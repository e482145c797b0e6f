"""Damaged bytes inside a weight file are found, once per version of the file."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
import torch
from damage import damage_a_stored_tensor, damage_safetensors_data, lengthen_safetensors_header

from backend.errors import WeightsError
from backend.models import DiT
from backend.pipeline import ModelConfigs
from backend.weight_cache import load_weights_cached
from backend.weights import (
    IntegrityRecord,
    integrity_record,
    load_weights,
    read_layout,
    read_state_dict,
    verify_integrity,
)
from backend.weights.integrity import RECORD_ENV, RECORD_NAME


@pytest.fixture
def record(tmp_path: Path) -> IntegrityRecord:
    return IntegrityRecord(tmp_path / "record" / RECORD_NAME)


def copy_of(tiny_weights: Path, name: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(tiny_weights / name, folder / name))


@pytest.mark.parametrize("name", ["flow.pt", "vae.pt"])
def test_damaged_tensor_bytes_in_a_pickle_are_found(
    tiny_weights: Path, tmp_path: Path, record: IntegrityRecord, name: str
) -> None:
    path = copy_of(tiny_weights, name, tmp_path)
    member = damage_a_stored_tensor(path)
    read_layout(path)  # the zip directory is intact: torch alone maps it without a word
    read_state_dict(path)
    with pytest.raises(WeightsError, match="fails its CRC check") as caught:
        verify_integrity(path, record)
    assert str(path) in caught.value.message
    assert member in caught.value.message
    assert "download it again" in caught.value.hint


def test_loading_a_damaged_file_is_a_weights_error(tiny_weights: Path, tmp_path: Path) -> None:
    path = copy_of(tiny_weights, "flow.pt", tmp_path)
    damage_a_stored_tensor(path)
    configs = ModelConfigs.from_file(tiny_weights / "model_config.json")
    with torch.device("meta"):
        dit = DiT(configs.dit)
    with pytest.raises(WeightsError, match="fails its CRC check") as caught:
        load_weights(dit, path, prefix="dit.", dtype=torch.float32, device="cpu")
    assert caught.value.exit_code == 3


def test_a_file_that_passed_is_not_read_again_until_it_changes(
    tiny_weights: Path, tmp_path: Path, record: IntegrityRecord
) -> None:
    path = copy_of(tiny_weights, "flow.pt", tmp_path)
    verify_integrity(path, record)
    assert record.passed(path)
    stat = path.stat()
    damage_a_stored_tensor(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    verify_integrity(path, record)  # same size and time: remembered, so not read again
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert not record.passed(path)
    with pytest.raises(WeightsError, match="CRC"):
        verify_integrity(path, record)


def test_a_failed_check_is_not_remembered(
    tiny_weights: Path, tmp_path: Path, record: IntegrityRecord
) -> None:
    path = copy_of(tiny_weights, "vae.pt", tmp_path)
    damage_a_stored_tensor(path)
    for _ in range(2):
        with pytest.raises(WeightsError):
            verify_integrity(path, record)
    assert not record.passed(path)


def hub_blob(source: Path, cache: Path) -> Path:
    """`source` as the Hugging Face cache keeps an LFS file: blobs/<sha256>, and the snapshot's
    name for it a link to the blob."""
    content = source.read_bytes()
    blob = cache / "blobs" / hashlib.sha256(content).hexdigest()
    blob.parent.mkdir(parents=True)
    blob.write_bytes(content)
    pointer = cache / "snapshots" / ("c" * 40) / source.name
    pointer.parent.mkdir(parents=True)
    pointer.symlink_to(Path("..", "..", "blobs", blob.name))
    return pointer


def test_a_hub_file_is_checked_against_its_sha256(
    tiny_weights: Path, tmp_path: Path, record: IntegrityRecord
) -> None:
    """safetensors has no checksum of its data: only the hub's hash finds a changed byte."""
    local = copy_of(tiny_weights, "model.safetensors", tmp_path / "local")
    pointer = hub_blob(local, tmp_path / "models--facebook--dinov2-giant")
    verify_integrity(pointer, record)
    damage_safetensors_data(pointer.resolve())
    with pytest.raises(WeightsError, match="sha256") as caught:
        verify_integrity(pointer, record)
    assert str(pointer) in caught.value.message
    damage_safetensors_data(local)
    verify_integrity(local, record)  # outside the hub's cache there is no hash to compare


def test_a_safetensors_header_longer_than_the_file_is_a_weights_error(
    tiny_weights: Path, tmp_path: Path, record: IntegrityRecord
) -> None:
    path = copy_of(tiny_weights, "model.safetensors", tmp_path)
    lengthen_safetensors_header(path)
    for check in (lambda: verify_integrity(path, record), lambda: read_layout(path)):
        with pytest.raises(WeightsError, match="truncated or corrupt") as caught:
            check()
        assert str(path) in caught.value.message


def test_the_record_sits_beside_the_converted_weights(
    tiny_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(RECORD_ENV)
    assert integrity_record(tmp_path).path == tmp_path / RECORD_NAME
    configs = ModelConfigs.from_file(tiny_weights / "model_config.json")
    with torch.device("meta"):
        dit = DiT(configs.dit)
    flow = tiny_weights / "flow.pt"
    cache = tmp_path / "cache"
    load_weights_cached(
        dit, flow, cache_dir=cache, prefix="dit.", dtype=torch.float32, device="cpu"
    )
    assert IntegrityRecord(cache / RECORD_NAME).passed(flow)


def test_the_record_goes_to_the_user_cache_without_converted_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(RECORD_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr("sys.platform", "linux")
    assert integrity_record().path == tmp_path / "partpacker" / RECORD_NAME
