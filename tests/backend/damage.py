"""Damaging weight files the ways the integrity tests need."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

LOCAL_HEADER = 30
"""Bytes of a zip member's local header before its name and extra field."""


def damage_a_stored_tensor(path: Path) -> str:
    """Flip one byte in the middle of the largest tensor's stored bytes of a torch zip file: the
    zip directory stays intact, only that member's CRC no longer matches. Returns its name."""
    with zipfile.ZipFile(path) as archive:
        tensors = [info for info in archive.infolist() if "/data/" in info.filename]
    member = max(tensors, key=lambda info: info.file_size)
    assert member.compress_type == zipfile.ZIP_STORED
    with path.open("r+b") as file:
        file.seek(member.header_offset + LOCAL_HEADER - 4)
        name_length, extra_length = struct.unpack("<HH", file.read(4))
        start = member.header_offset + LOCAL_HEADER + name_length + extra_length
        flip_byte(file, start + member.file_size // 2)
    return member.filename


def damage_safetensors_data(path: Path) -> None:
    """Flip one byte of the tensor data (past the header): safetensors' own checks pass."""
    with path.open("r+b") as file:
        header_length = struct.unpack("<Q", file.read(8))[0]
        size = path.stat().st_size
        flip_byte(file, 8 + header_length + (size - 8 - header_length) // 2)


def flip_byte(file, offset: int) -> None:  # type: ignore[no-untyped-def]
    file.seek(offset)
    value = file.read(1)[0]
    file.seek(offset)
    file.write(bytes([value ^ 0xFF]))


def lengthen_safetensors_header(path: Path) -> None:
    """The 8-byte header length says more bytes than the whole file has."""
    data = path.read_bytes()
    path.write_bytes(struct.pack("<Q", len(data) + 10) + data[8:])
