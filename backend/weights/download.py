"""Fetching the three files from the hub, with one byte count over all of them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from ..errors import CancelCheck, Cancelled, WeightsError
from ..hub_download import download_to_cache, download_to_folder, hub_offline, remote_file
from .locating import resolve_weights
from .sources import WEIGHT_SOURCES, WeightFiles, WeightSource, describe, revision_for

log = logging.getLogger(__name__)

ByteProgress = Callable[[int, int, str], None]
"""(downloaded bytes, total bytes, file name), over all three files together."""


def download_weights(
    *,
    cache_dir: Path | None = None,
    revision: str | None = None,
    local_dir: Path | None = None,
    progress: ByteProgress | None = None,
    should_cancel: CancelCheck | None = None,
    endpoint: str | None = None,
) -> WeightFiles:
    """Fetch the three files into the Hugging Face cache (or into `local_dir`, flat).

    Files already complete are not fetched again, and a file stopped part-way (cancelled, or
    the connection lost) goes on from where it stopped next time; its partial copy is never
    mistaken for the weights (hub_download.py). With HF_HUB_OFFLINE set nothing is fetched: the
    files must already be in the cache. `endpoint` is a hub mirror (default: $HF_ENDPOINT, else
    huggingface.co). Cancelling raises `Cancelled`."""
    if hub_offline():
        log.info("HF_HUB_OFFLINE is set: looking in the cache only")
        return _resolve_offline(cache_dir, revision, local_dir)
    tally = ByteTally(progress, should_cancel)
    found = {
        source.field: _download_one(source, tally, cache_dir, revision, local_dir, endpoint)
        for source in WEIGHT_SOURCES
    }
    return WeightFiles(**found)


def _resolve_offline(
    cache_dir: Path | None, revision: str | None, local_dir: Path | None
) -> WeightFiles:
    try:
        return resolve_weights(local_dir, cache_dir=cache_dir, revision=revision, offline=True)
    except WeightsError as error:
        raise WeightsError(
            f"HF_HUB_OFFLINE is set, so nothing can be downloaded, and {error.message}",
            "unset HF_HUB_OFFLINE and run the download again, or copy the files in by hand",
        ) from error


def _download_one(
    source: WeightSource,
    tally: ByteTally,
    cache_dir: Path | None,
    revision: str | None,
    local_dir: Path | None,
    endpoint: str | None,
) -> Path:
    tally.start(source)
    try:
        remote = remote_file(
            source.repo_id, source.filename, revision_for(source, revision), endpoint
        )
        if local_dir is None:
            path = download_to_cache(remote, cache_dir, tally)
        else:
            path = download_to_folder(remote, local_dir, tally)
    except OSError as error:
        raise WeightsError(
            f"could not download {describe(source)}: {error}",
            "check the network connection and run the download again: it goes on from where it "
            "stopped",
        ) from error
    tally.finish(source, path.stat().st_size)
    return path


class ByteTally:
    """Bytes downloaded over the three files, reported as each file's download advances.

    Sizes start as the approximate ones and become exact once a file's download starts."""

    def __init__(self, progress: ByteProgress | None, should_cancel: CancelCheck | None) -> None:
        self.progress = progress
        self.should_cancel = should_cancel
        self.done = {source.filename: 0 for source in WEIGHT_SOURCES}
        self.totals = {source.filename: source.approx_bytes for source in WEIGHT_SOURCES}
        self.current = WEIGHT_SOURCES[0].filename

    def start(self, source: WeightSource) -> None:
        self.current = source.filename
        self.report()
        self.check_cancel()

    def finish(self, source: WeightSource, size: int) -> None:
        self.done[source.filename] = self.totals[source.filename] = size
        self.report()

    def started(self, total: int, already: int) -> None:
        self.totals[self.current] = total
        self.done[self.current] = already
        self.report()

    def advance(self, size: int) -> None:
        self.done[self.current] += size
        self.report()
        self.check_cancel()

    def report(self) -> None:
        if self.progress is not None:
            self.progress(sum(self.done.values()), sum(self.totals.values()), self.current)

    def check_cancel(self) -> None:
        if self.should_cancel is not None and self.should_cancel():
            raise Cancelled(f"download cancelled during {self.current}")
