"""Hub files fetched so that a stopped download goes on where it stopped.

huggingface_hub writes each download to a temporary file that it deletes on any failure, so a
cancelled 5 GB download would start over. Here the bytes go to a `.partial` file beside their
final place, kept when a download stops; the next run asks the server only for the rest (an
HTTP Range request). A finished file is checked (its size, and its sha256 where the hub's ETag
is one, as for every LFS file) before it takes its place:

* in a local folder: DIR/<filename>;
* in a Hugging Face cache, in the hub's own layout (blobs/<etag>, snapshots/<commit>/<filename>
  pointing at it, refs/<revision>), where huggingface_hub finds it as if it had fetched it.

Every failure is an OSError.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import importlib
import os
import re
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from filelock import FileLock

CHUNK_BYTES = 1 << 20
READ_TIMEOUT = 60.0
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class ByteCounter(Protocol):
    def started(self, total: int, already: int) -> None: ...

    def advance(self, size: int) -> None:
        """Called after each chunk written; may raise to stop (the partial file is kept)."""


@dataclass(frozen=True)
class RemoteFile:
    repo_id: str
    filename: str
    revision: str
    url: str
    """Where the bytes are: the hub's resolve URL, or the storage it redirects to."""
    size: int
    etag: str
    commit: str
    hub_host: str


def hub_offline() -> bool:
    """$HF_HUB_OFFLINE read now, not when huggingface_hub was imported: with it set, nothing is
    downloaded (not the weights, not the background-removal model)."""
    value = os.environ.get("HF_HUB_OFFLINE", "")
    return value.strip().upper() in {"1", "ON", "YES", "TRUE"}


def remote_file(
    repo_id: str, filename: str, revision: str | None = None, endpoint: str | None = None
) -> RemoteFile:
    """Ask the hub (one HEAD request) for a file's size, ETag, commit and location."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    revision = revision or "main"
    url = hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint)
    try:
        metadata = get_hf_file_metadata(url, endpoint=endpoint)
    except OSError:
        raise
    except transport_errors() as error:
        raise OSError(f"cannot reach {urlsplit(url).netloc}: {error}") from error
    if metadata.size is None or not metadata.etag or not metadata.commit_hash:
        raise OSError(f"the hub did not say the size, ETag and commit of {url}")
    return RemoteFile(
        repo_id=repo_id,
        filename=filename,
        revision=revision,
        url=metadata.location,
        size=metadata.size,
        etag=metadata.etag,
        commit=metadata.commit_hash,
        hub_host=urlsplit(url).netloc,
    )


def transport_errors() -> tuple[type[Exception], ...]:
    """huggingface_hub's HTTP library raises its own errors for a refused connection or a
    timeout, not OSErrors: httpx under huggingface_hub 1.x, httpx2 under 2.x."""
    errors = []
    for library in ("httpx", "httpx2"):
        with contextlib.suppress(ImportError):
            errors.append(importlib.import_module(library).HTTPError)
    return tuple(errors)


def download_to_folder(remote: RemoteFile, folder: Path, counter: ByteCounter) -> Path:
    """`folder/<filename>`; a file already there with the hub's size is kept as it is."""
    target = folder / remote.filename
    with one_writer(folder / f".{remote.filename}.lock"):
        if not (target.is_file() and target.stat().st_size == remote.size):
            partial = folder / f".{remote.filename}.{remote.etag[:16]}.partial"
            fetch_checked(remote, partial, counter).replace(target)
    return target


def download_to_cache(remote: RemoteFile, cache_dir: Path | None, counter: ByteCounter) -> Path:
    """The file's place in the Hugging Face cache (`cache_dir`, else huggingface_hub's own)."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    cache = Path(cache_dir or constants.HF_HUB_CACHE)
    folder = repo_folder_name(repo_id=remote.repo_id, repo_type="model")
    repo = cache / folder
    blob = repo / "blobs" / remote.etag
    pointer = repo / "snapshots" / remote.commit / remote.filename
    with one_writer(cache / ".locks" / folder / f"{remote.etag}.lock"):  # huggingface_hub's lock
        if not pointer.is_file():
            if not blob.is_file():
                partial = blob.with_name(f"{blob.name}.partial")
                fetch_checked(remote, partial, counter).replace(blob)
            point_to_blob(pointer, blob)
    if remote.revision != remote.commit:
        ref = repo / "refs" / remote.revision
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(remote.commit)
    return pointer


def one_writer(lock_file: Path) -> FileLock:
    """Held while a file is fetched and put in place: two downloads of one file (two Blenders,
    or Blender and a shell) must not append to the same partial file."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(lock_file)


def point_to_blob(pointer: Path, blob: Path) -> None:
    """A relative symlink, as huggingface_hub makes; where links are not allowed (Windows
    without developer mode) the blob itself moves to the snapshot, as huggingface_hub does."""
    pointer.parent.mkdir(parents=True, exist_ok=True)
    pointer.unlink(missing_ok=True)  # a dangling link from a deleted blob
    try:
        pointer.symlink_to(Path("..", "..", "blobs", blob.name))
    except OSError:
        shutil.move(blob, pointer)


def fetch_checked(remote: RemoteFile, partial: Path, counter: ByteCounter) -> Path:
    """Fill `partial` up to the remote size, going on from what it holds, then check it.

    A short file stays for the next try; a file whose sha256 is wrong is deleted."""
    partial.parent.mkdir(parents=True, exist_ok=True)
    have = partial.stat().st_size if partial.is_file() else 0
    if have > remote.size:
        have = 0
    # The hash is taken as the bytes arrive; only bytes kept from an earlier run are read back.
    digest = hashlib.sha256() if SHA256_HEX.fullmatch(remote.etag) else None
    if digest is not None and have:
        hash_file(partial, digest)
    counter.started(remote.size, have)
    if have < remote.size:
        have, digest = _fetch_rest(remote, partial, have, counter, digest)
    if have != remote.size:
        raise OSError(
            f"{remote.filename}: the server sent {have:,} of {remote.size:,} bytes; "
            "run the download again to fetch the rest"
        )
    if digest is not None and digest.hexdigest() != remote.etag:
        partial.unlink()
        raise OSError(f"{remote.filename} arrived damaged (its sha256 is not the hub's)")
    return partial


def _fetch_rest(
    remote: RemoteFile, partial: Path, have: int, counter: ByteCounter, digest: Any | None
) -> tuple[int, Any | None]:
    """Append the bytes from `have` on, feeding `digest`; the size reached and the digest."""
    try:
        return _append(remote, partial, have, counter, digest)
    except http.client.HTTPException as error:  # a cut chunked reply, a broken proxy
        raise OSError(f"{remote.filename}: {type(error).__name__}: {error}") from error


def _append(
    remote: RemoteFile, partial: Path, have: int, counter: ByteCounter, digest: Any | None
) -> tuple[int, Any | None]:
    with _open(remote, have) as response:
        if have and response.status != 206:  # the server sends the whole file instead
            have = 0
            counter.started(remote.size, 0)
            digest = hashlib.sha256() if digest is not None else None
        with partial.open("ab" if have else "wb") as out:
            while chunk := response.read(CHUNK_BYTES):
                out.write(chunk)
                if digest is not None:
                    digest.update(chunk)
                have += len(chunk)
                counter.advance(len(chunk))
    return have, digest


def _open(remote: RemoteFile, start: int):
    """GET from byte `start`; the hub's token goes to the hub only, never to the storage host
    a download is redirected to."""
    from huggingface_hub.utils import build_hf_headers

    on_hub = urlsplit(remote.url).netloc == remote.hub_host
    headers = build_hf_headers() if on_hub else {}
    headers["Accept-Encoding"] = "identity"
    if start:
        headers["Range"] = f"bytes={start}-"
    opener = urllib.request.build_opener(TokenStaysOnItsHost)
    return opener.open(urllib.request.Request(remote.url, headers=headers), timeout=READ_TIMEOUT)


class TokenStaysOnItsHost(urllib.request.HTTPRedirectHandler):
    """urllib keeps every header across redirects; the Authorization header must not leave
    the host it was meant for."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urlsplit(newurl).netloc != urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")
        return new


def hash_file(path: Path, digest: Any) -> None:
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES * 8):
            digest.update(chunk)
