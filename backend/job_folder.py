"""A job folder holds one run's complete set (backend/PROTOCOL.md "Job folder").

A run writes its files into a hidden folder beside the job folder, `.NAME.partial-XXXX`, which
takes the job folder's place in one rename once every file is there; an earlier set in the way is
first renamed aside, `.NAME.replaced-XXXX`, and then deleted. So a reader of the folder finds an
earlier run's set, or this run's, or (for a moment) no folder, never a mix; of two runs into one
folder, the later to finish wins. A failed or cancelled run removes its hidden folder and leaves
the job folder as it was. A folder that holds anything but a job's files is never replaced.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import OutputError
from .files import special_file_kind

JOB_FILES = frozenset(("parts.glb", "parts.npz", "preview.png", "result.json"))
PARTIAL = "partial"
REPLACED = "replaced"
PLACING_ATTEMPTS = 10
"""Renames tried while other runs keep putting their sets into the same folder."""
IN_THE_WAY = {errno.EEXIST, errno.ENOTEMPTY}
OUTPUT_HINT = "choose a folder you can write to"


class JobFolder:
    """The job folder `target` while one run writes it: `file(name)` is where each file goes."""

    def __init__(self, target: Path) -> None:
        self.target = Path(target)
        self._real = Path(os.path.realpath(self.target))  # a link to a folder: the folder's place
        require_replaceable(self._real, self.target)
        self._staging: Path | None = None

    def file(self, name: str) -> Path:
        if self._staging is None:
            self._staging = self._make_staging()
        return self._staging / name

    def _make_staging(self) -> Path:
        parent = make_output_dir(self._real.parent)
        try:
            staging = Path(tempfile.mkdtemp(prefix=hidden_name(self._real, PARTIAL), dir=parent))
            staging.chmod(0o755)  # mkdtemp's 0700 would hide the folder from other users
        except OSError as error:
            raise output_error(f"cannot create a folder in {parent}", error) from error
        return staging

    def commit(self) -> None:
        """Put the written set in the job folder's place, replacing an earlier set."""
        staging = self._staging or self._make_staging()
        retired: list[Path] = []
        try:
            for _ in range(PLACING_ATTEMPTS):
                try:
                    staging.rename(self._real)
                    self._staging = None
                    return
                except OSError as error:
                    if error.errno not in IN_THE_WAY:
                        what = f"cannot put the job's files at {self.target}"
                        raise output_error(what, error) from error
                retired.extend(self._retire())
            raise OutputError(
                f"other runs keep writing into {self.target}; this run's files were not kept",
                "give every run its own output folder",
            )
        finally:
            for folder in retired:
                shutil.rmtree(folder, ignore_errors=True)

    def _retire(self) -> list[Path]:
        """Rename the set in the way aside (checked again: it must still be a job's)."""
        require_replaceable(self._real, self.target)
        aside = self._real.with_name(hidden_name(self._real, REPLACED) + secrets.token_hex(4))
        try:
            self._real.rename(aside)
        except FileNotFoundError:  # another run took it away first
            return []
        except OSError as error:
            what = f"cannot replace the earlier job's files in {self.target}"
            raise output_error(what, error) from error
        return [aside]

    def discard(self) -> None:
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None


@contextlib.contextmanager
def building(target: Path) -> Iterator[JobFolder]:
    """The job folder `target`, checked at once (before any work), written in the block and put
    in place when the block ends without an error; after an error, `target` is left as it was."""
    folder = JobFolder(target)
    try:
        yield folder
        folder.commit()
    finally:
        folder.discard()


def require_replaceable(real: Path, given: Path) -> None:
    """`real` is absent, or a folder with nothing but a job's files (an earlier run's set)."""
    try:
        mode = real.stat().st_mode
    except FileNotFoundError:
        return
    except OSError as error:
        raise output_error(f"cannot look at the output folder {given}", error) from error
    if not stat.S_ISDIR(mode):
        kind = "a file" if stat.S_ISREG(mode) else special_file_kind(mode)
        raise OutputError(f"the output folder {given} is {kind}", "give a folder's path")
    try:
        foreign = sorted(set(os.listdir(real)) - JOB_FILES)
    except OSError as error:
        raise output_error(f"cannot look into the output folder {given}", error) from error
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise OutputError(
            f"the output folder {given} holds files that are not a job's ({shown})",
            "give a new or empty folder, or an earlier job's folder: its set is replaced",
        )


def hidden_name(real: Path, role: str) -> str:
    return f".{real.name}.{role}-"


def make_output_dir(path: Path) -> Path:
    """`path` as a folder, created with its parents when missing."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise output_error(f"cannot create the output folder {path}", error) from error
    return path


def output_error(what: str, error: OSError) -> OutputError:
    return OutputError(f"{what}: {error.strerror or error}", OUTPUT_HINT)
