"""Files read and written safely: outputs written whole or not at all, and paths that are not
plain files (FIFOs, devices, sockets) refused before anything opens or replaces them."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from .errors import BadInputError, OutputError

OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


def write_atomically(path: Path, write: Callable[[Path], object]) -> Path:
    """`write(temporary)` fills a new file beside `path` (same suffix, so that writers that
    look at it pick the format), which then replaces `path` in one rename: readers never see a
    half-written file, and a failure leaves nothing behind. Errors pass through (OSError for
    the file system)."""
    handle, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        write(temporary)
        temporary.chmod(0o644)  # mkstemp's 0600 would hide the file from other users
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def special_file_kind(mode: int) -> str:
    """What a file that is neither a regular file nor a folder is, in words."""
    kinds = (
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((text for test, text in kinds if test(mode)), "not a regular file")


def open_image_file(path: Path) -> BinaryIO:
    """`path` opened for reading, if it is a regular file (or a link to one): a FIFO would block
    the reader for good and a device never ends, so neither is ever opened."""
    _require_regular_file(path, _status(path))
    try:  # should a FIFO take the file's place after the check, O_NONBLOCK opens it at once
        descriptor = os.open(path, OPEN_FLAGS)
    except OSError as exc:
        raise BadInputError(
            f"cannot read {path}: {exc.strerror or exc}", "Check that the file can be read."
        ) from exc
    stream = os.fdopen(descriptor, "rb")
    try:
        _require_regular_file(path, os.fstat(descriptor))
    except BadInputError:
        stream.close()
        raise
    return stream


def _status(path: Path) -> os.stat_result:
    try:
        return path.stat()
    except FileNotFoundError as exc:
        raise BadInputError(
            f"image not found: {path}", "Check the path and the file name."
        ) from exc
    except OSError as exc:
        raise BadInputError(
            f"cannot read {path}: {exc.strerror or exc}", "Check that the file can be read."
        ) from exc


def _require_regular_file(path: Path, status: os.stat_result) -> None:
    if stat.S_ISDIR(status.st_mode):
        raise BadInputError(f"{path} is a folder, not an image file", "Choose a file.")
    if not stat.S_ISREG(status.st_mode):
        raise BadInputError(
            f"{path} is {special_file_kind(status.st_mode)}, not an image file",
            "Choose an image file saved on disk.",
        )


def require_file_to_write(path: Path) -> None:
    """Refuse an output path that is a folder, a device, a FIFO or another special file, which
    writing would replace (or, as root, turn a device node into a picture)."""
    try:
        mode = path.stat().st_mode
    except OSError:  # absent (to be created) or unreachable: the writing says which
        return
    if stat.S_ISDIR(mode):
        raise OutputError(f"{path} is a folder", "Give the path of the PNG file to write.")
    if not stat.S_ISREG(mode):
        raise OutputError(
            f"{path} is {special_file_kind(mode)}, not a file to write into",
            "Give the path of a new or existing PNG file.",
        )
