"""Where the three files are: one local folder, or the Hugging Face cache. Never downloads."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from ..errors import WeightsError
from ..hub_download import hub_offline
from .sources import (
    DOWNLOAD_HINT,
    WEIGHT_SOURCES,
    WeightFiles,
    WeightSource,
    describe,
    revision_for,
)


def resolve_weights(
    weights_dir: Path | None = None,
    *,
    cache_dir: Path | None = None,
    revision: str | None = None,
    offline: bool | None = None,
) -> WeightFiles:
    """The three files from `weights_dir` if given, else from the Hugging Face cache.

    Never downloads. `offline` (default: $HF_HUB_OFFLINE) only changes the advice given when
    files are missing."""
    if weights_dir is not None:
        return _resolve_local(Path(weights_dir))
    found, missing = _find_each(lambda source: _cached_file(source, cache_dir, revision))
    if missing:
        offline = hub_offline() if offline is None else offline
        hint = "unset HF_HUB_OFFLINE, then " + DOWNLOAD_HINT if offline else DOWNLOAD_HINT
        where = f"the Hugging Face cache ({cache_dir or 'default location'})"
        raise WeightsError(_missing_message(missing, where), hint)
    return WeightFiles(**found)


def _resolve_local(folder: Path) -> WeightFiles:
    if not folder.is_dir():
        raise WeightsError(f"weights folder {folder} does not exist", DOWNLOAD_HINT)
    found, missing = _find_each(lambda source: _local_file(folder, source))
    if missing:
        raise WeightsError(_local_problems(folder, missing), DOWNLOAD_HINT)
    return WeightFiles(**found)


def _find_each(
    find: Callable[[WeightSource], Path | None],
) -> tuple[dict[str, Path], list[WeightSource]]:
    """The files found, by `WeightFiles` field, and the sources not found."""
    found: dict[str, Path] = {}
    missing: list[WeightSource] = []
    for source in WEIGHT_SOURCES:
        path = find(source)
        if path is None:
            missing.append(source)
        else:
            found[source.field] = path
    return found, missing


def _local_file(folder: Path, source: WeightSource) -> Path | None:
    candidates = (folder / name for name in source.local_names)
    return next((candidate for candidate in candidates if candidate.is_file()), None)


def _local_problems(folder: Path, missing: list[WeightSource]) -> str:
    """A folder standing where a file should be is named as such, not as a missing file."""
    problems = []
    absent = []
    for source in missing:
        folders = [folder / name for name in source.local_names if (folder / name).is_dir()]
        if folders:
            problems.append(f"{folders[0]} is a folder, not the file {describe(source)}")
        else:
            absent.append(source)
    if absent:
        problems.append(_missing_message(absent, f"weights folder {folder}"))
    return "; ".join(problems)


def _missing_message(missing: Iterable[WeightSource], where: str) -> str:
    names = ", ".join(describe(source) for source in missing)
    return f"missing in {where}: {names}"


def _cached_file(source: WeightSource, cache_dir: Path | None, revision: str | None) -> Path | None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        path = hf_hub_download(
            source.repo_id,
            source.filename,
            revision=revision_for(source, revision),
            cache_dir=cache_dir,
            local_files_only=True,
        )
    except LocalEntryNotFoundError:
        return None
    return Path(path)
