"""Damaged bytes in a weight file are found before they turn into a wrong mesh.

torch maps a zip checkpoint's tensors without reading them, so a changed byte inside flow.pt
would load without a word. Each file is checked by the strongest means it has:

* a file in the Hugging Face cache whose blob is named by its sha256 (as every LFS file is):
  that hash;
* a zip checkpoint (torch's format): every member's CRC-32;
* safetensors: its own header and size checks (the format has no checksum of the data);
* a pre-zip torch pickle: nothing beyond reading it.

The whole file is read once; a file that passed is remembered by its path, size and
modification time in a small JSON record, so that later starts skip the check until the file
changes. The record sits beside the converted weights (--weights-cache) when there are any,
else in the user's cache folder ($PARTPACKER_INTEGRITY_RECORD overrides both).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import zipfile
from pathlib import Path

from safetensors import SafetensorError, safe_open

from ..files import write_atomically
from ..hub_download import SHA256_HEX, hash_file
from .reading import ZIP_MAGIC, corrupt, looks_like_safetensors, read_head, unreadable

log = logging.getLogger(__name__)

RECORD_ENV = "PARTPACKER_INTEGRITY_RECORD"
RECORD_NAME = "verified-weights.json"


class IntegrityRecord:
    """Files that passed the check, as {resolved path: [size, mtime_ns]}."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def passed(self, file: Path) -> bool:
        return self._read().get(str(file.resolve())) == _identity(file)

    def remember(self, file: Path) -> None:
        """A record that cannot be written only costs the check again next time."""
        entries = self._read()
        entries[str(file.resolve())] = _identity(file)
        text = json.dumps(entries, indent=1)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(self.path, lambda temporary: temporary.write_text(text))
        except OSError as error:
            log.warning("cannot write the weights integrity record %s: %s", self.path, error)

    def _read(self) -> dict[str, list[int]]:
        try:
            entries = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return entries if isinstance(entries, dict) else {}


def _identity(file: Path) -> list[int]:
    stat = file.stat()
    return [stat.st_size, stat.st_mtime_ns]


def integrity_record(weights_cache: Path | None = None) -> IntegrityRecord:
    """Where checked files are remembered: $PARTPACKER_INTEGRITY_RECORD, else beside the
    converted weights, else in the user's cache folder."""
    if os.environ.get(RECORD_ENV):
        return IntegrityRecord(Path(os.environ[RECORD_ENV]))
    folder = weights_cache if weights_cache is not None else _user_cache() / "partpacker"
    return IntegrityRecord(Path(folder) / RECORD_NAME)


def _user_cache() -> Path:
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"])
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def verify_integrity(path: Path, record: IntegrityRecord | None = None) -> None:
    """A WeightsError naming `path` if its bytes are damaged; checked once per version of it."""
    record = record or integrity_record()
    try:
        if record.passed(path):
            return
    except OSError:
        pass  # the file's own check below says what is wrong with it
    check_bytes(path)
    record.remember(path)


def check_bytes(path: Path) -> None:
    head = read_head(path)
    try:
        expected = hub_sha256(path)
        if expected is not None:
            _check_sha256(path, expected)
        elif head.startswith(ZIP_MAGIC):
            _check_zip(path)
        elif looks_like_safetensors(head):
            _check_safetensors(path)
    except OSError as error:
        raise unreadable(path, error) from error


def hub_sha256(path: Path) -> str | None:
    """The sha256 a Hugging Face cache file is named by: its blob's name (LFS files only)."""
    blob = path.resolve()
    if blob.parent.name == "blobs" and SHA256_HEX.fullmatch(blob.name):
        return blob.name
    return None


def _check_sha256(path: Path, expected: str) -> None:
    digest = hashlib.sha256()
    hash_file(path, digest)
    if digest.hexdigest() != expected:
        raise corrupt(path, "its sha256 is not the hub's")


def _check_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as error:
        raise corrupt(path, error) from error
    if damaged is not None:
        raise corrupt(path, f"{damaged} fails its CRC check: the bytes changed after saving")


def _check_safetensors(path: Path) -> None:
    try:
        with safe_open(path, framework="pt"):
            pass
    except (SafetensorError, ValueError) as error:
        raise corrupt(path, error) from error
