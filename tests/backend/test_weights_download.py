"""Downloading the weights: offline, from a hub on localhost, cancelled and resumed."""

from __future__ import annotations

import hashlib
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import torch
from tiny_checkpoints import (
    TinyFlow,
    fill_folder,
    fill_hub_cache,
    on_meta,
)

from backend.errors import Cancelled, WeightsError
from backend.weights import (
    WEIGHT_SOURCES,
    WeightFiles,
    download_weights,
    load_weights,
    resolve_weights,
)


def test_offline_download_returns_the_cached_files(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    expected = fill_hub_cache(tmp_path)
    assert download_weights(cache_dir=tmp_path) == expected


def test_offline_download_into_a_local_folder_finds_it_filled(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    fill_folder(tmp_path / "weights")
    files = download_weights(cache_dir=tmp_path / "cache", local_dir=tmp_path / "weights")
    assert files.dinov2 == tmp_path / "weights" / "model.safetensors"


def test_offline_download_with_an_empty_cache_says_why(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError) as caught:
        download_weights(cache_dir=tmp_path)
    message = caught.value.message
    assert "HF_HUB_OFFLINE" in message
    for source in WEIGHT_SOURCES:
        assert source.filename in message


# --- downloading from a hub on localhost ---------------------------------------------------------


class LocalHub:
    """Answers huggingface_hub's HEAD and GET (with Range) for /ORG/NAME/resolve/REV/FILE."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[tuple[str, str, str | None]] = []
        self.tokens: list[str | None] = []
        self.redirect_gets_to: str | None = None
        self.ignore_ranges = False
        """Answer every GET with the whole file, as servers without Range support do."""
        """Another server's URL: GETs are redirected there, as the hub does to its storage."""
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                hub.answer(self, body=False)

            def do_GET(self) -> None:
                hub.answer(self, body=True)

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, handler: BaseHTTPRequestHandler, body: bool) -> None:
        byte_range = handler.headers.get("Range")
        self.requests.append((handler.command, handler.path, byte_range))
        self.tokens.append(handler.headers.get("Authorization"))
        if body and self.redirect_gets_to:
            handler.send_response(302)
            handler.send_header("Location", self.redirect_gets_to + handler.path)
            handler.end_headers()
            return
        repo, _, rest = handler.path.lstrip("/").partition("/resolve/")
        content = self.files.get(f"{repo}/{rest.partition('/')[2]}")
        if content is None:
            handler.send_response(404)
            handler.end_headers()
            return
        ranged = byte_range and not self.ignore_ranges
        start = int(byte_range.removeprefix("bytes=").split("-")[0]) if ranged else 0
        handler.send_response(206 if start else 200)
        handler.send_header("X-Repo-Commit", hashlib.sha1(repo.encode()).hexdigest())
        handler.send_header("ETag", f'"{hashlib.sha256(content).hexdigest()}"')
        handler.send_header("Content-Length", str(len(content) - start))
        if start:
            handler.send_header("Content-Range", f"bytes {start}-{len(content) - 1}/{len(content)}")
        handler.end_headers()
        if body:
            handler.wfile.write(content[start:])

    def gets(self, filename: str) -> list[str | None]:
        return [r for method, path, r in self.requests if method == "GET" and filename in path]

    def __enter__(self) -> LocalHub:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalHub]:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    fill_folder(tmp_path / "source")
    files = {
        "nvidia/PartPacker/flow.pt": (tmp_path / "source" / "flow.pt").read_bytes(),
        "nvidia/PartPacker/vae.pt": (tmp_path / "source" / "vae.pt").read_bytes(),
        "facebook/dinov2-giant/model.safetensors": (
            tmp_path / "source" / "model.safetensors"
        ).read_bytes(),
    }
    with LocalHub(files) as server:
        yield server


def cancelled_download(
    stop: Callable[[tuple[int, int, str]], bool], **where: Any
) -> list[tuple[int, int, str]]:
    """A download cancelled once `stop` holds for its latest progress call; all the calls."""
    calls: list[tuple[int, int, str]] = []
    with pytest.raises(Cancelled):
        download_weights(
            **where,
            progress=lambda *call: calls.append(call),
            should_cancel=lambda: bool(calls) and stop(calls[-1]),
        )
    return calls


def test_download_fills_the_cache_with_progress(tmp_path: Path, hub: LocalHub) -> None:
    calls: list[tuple[int, int, str]] = []
    cache = tmp_path / "cache"
    files = download_weights(
        cache_dir=cache, endpoint=hub.url, progress=lambda *call: calls.append(call)
    )
    for source in WEIGHT_SOURCES:
        path = getattr(files, source.field)
        assert path.read_bytes() == hub.files[f"{source.repo_id}/{source.filename}"]
        assert cache in path.parents
    total = sum(len(content) for content in hub.files.values())
    assert calls[-1] == (total, total, "model.safetensors")
    downloaded = [done for done, _, _ in calls]
    assert downloaded == sorted(downloaded)
    assert {name for _, _, name in calls} == {"flow.pt", "vae.pt", "model.safetensors"}
    # What the download wrote is what resolution finds, and the loader reads it.
    assert resolve_weights(cache_dir=cache) == files
    load_weights(on_meta(TinyFlow), files.flow, prefix="dit.", dtype=torch.float32, device="cpu")


def test_download_into_a_local_folder(tmp_path: Path, hub: LocalHub) -> None:
    folder = tmp_path / "weights"
    files = download_weights(cache_dir=tmp_path / "cache", local_dir=folder, endpoint=hub.url)
    assert files == resolve_weights(folder)
    assert files.vae.read_bytes() == hub.files["nvidia/PartPacker/vae.pt"]


def test_cancel_between_files_then_resume(tmp_path: Path, hub: LocalHub) -> None:
    cache = tmp_path / "cache"
    cancelled_download(lambda call: call[2] == "vae.pt", cache_dir=cache, endpoint=hub.url)
    assert len(hub.gets("flow.pt")) == 1
    assert hub.gets("vae.pt") == []
    download_weights(cache_dir=cache, endpoint=hub.url)
    assert len(hub.gets("flow.pt")) == 1  # kept from the first run, not fetched again
    assert len(hub.gets("vae.pt")) == 1


@pytest.mark.parametrize("into", ["cache", "folder"])
def test_a_download_stopped_inside_a_file_goes_on_from_where_it_stopped(
    tmp_path: Path, hub: LocalHub, monkeypatch: pytest.MonkeyPatch, into: str
) -> None:
    monkeypatch.setattr("backend.hub_download.CHUNK_BYTES", 1024)
    where = {"cache_dir": tmp_path / "cache", "endpoint": hub.url}
    if into == "folder":
        where["local_dir"] = tmp_path / "weights"
    calls = cancelled_download(lambda call: call[0] >= 2048, **where)
    flow = hub.files["nvidia/PartPacker/flow.pt"]
    stopped_at, _, stopped_in = calls[-1]
    assert stopped_in == "flow.pt"
    assert 2048 <= stopped_at < len(flow)
    with pytest.raises(WeightsError, match=re.escape("flow.pt")):
        resolve_weights(where.get("local_dir"), cache_dir=tmp_path / "cache")

    calls.clear()
    files = download_weights(**where, progress=lambda *call: calls.append(call))
    assert files.flow.read_bytes() == flow
    assert hub.gets("flow.pt")[-1] == f"bytes={stopped_at}-"
    counted = [done for done, _, name in calls if name == "flow.pt" and done]
    assert counted[0] == stopped_at, "progress goes on from the bytes already there"
    assert resolve_weights(where.get("local_dir"), cache_dir=tmp_path / "cache") == files
    assert not list(tmp_path.rglob("*.partial"))


@pytest.fixture
def stopped_cache(tmp_path: Path, hub: LocalHub, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache whose download into it was cancelled 2 KiB into flow.pt."""
    monkeypatch.setattr("backend.hub_download.CHUNK_BYTES", 1024)
    cache = tmp_path / "cache"
    cancelled_download(lambda call: call[0] >= 2048, cache_dir=cache, endpoint=hub.url)
    return cache


def test_a_server_without_ranges_sends_the_whole_file_again(
    stopped_cache: Path, hub: LocalHub
) -> None:
    cache = stopped_cache
    hub.ignore_ranges = True
    files = download_weights(cache_dir=cache, endpoint=hub.url)
    assert hub.gets("flow.pt")[-1] is not None, "it asked for the rest"
    assert files.flow.read_bytes() == hub.files["nvidia/PartPacker/flow.pt"]


def test_two_downloads_of_one_file_at_once_do_not_mix_their_bytes(
    tmp_path: Path, hub: LocalHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("backend.hub_download.CHUNK_BYTES", 1024)
    folder = tmp_path / "weights"
    results: list[WeightFiles] = []

    def download(pause: float) -> None:
        # The first pauses inside flow.pt, so that the second starts while it is half done.
        def progress(done: int, total: int, name: str) -> None:
            if pause and name == "flow.pt" and done == 1024:
                time.sleep(pause)

        results.append(download_weights(local_dir=folder, endpoint=hub.url, progress=progress))

    first = threading.Thread(target=download, args=(0.5,))
    first.start()
    time.sleep(0.1)
    download(0.0)
    first.join()
    assert len(results) == 2
    assert (folder / "flow.pt").read_bytes() == hub.files["nvidia/PartPacker/flow.pt"]


def test_a_damaged_partial_file_is_thrown_away_not_used(stopped_cache: Path, hub: LocalHub) -> None:
    cache = stopped_cache
    (partial,) = cache.rglob("*.partial")
    partial.write_bytes(b"\0" * partial.stat().st_size)
    with pytest.raises(WeightsError, match="damaged"):
        download_weights(cache_dir=cache, endpoint=hub.url)
    assert not partial.exists()
    files = download_weights(cache_dir=cache, endpoint=hub.url)
    assert files.flow.read_bytes() == hub.files["nvidia/PartPacker/flow.pt"]


def test_the_hub_token_never_follows_a_redirect_to_storage(
    tmp_path: Path, hub: LocalHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    with LocalHub(hub.files) as storage:
        hub.redirect_gets_to = storage.url.replace("127.0.0.1", "localhost")
        files = download_weights(cache_dir=tmp_path / "cache", endpoint=hub.url)
    assert files.vae.read_bytes() == hub.files["nvidia/PartPacker/vae.pt"]
    assert "Bearer hf_secret" in hub.tokens, "the hub itself gets the token"
    assert storage.gets("vae.pt") and set(storage.tokens) == {None}


def test_a_hub_that_refuses_connections_is_a_weights_error(tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(WeightsError, match=re.escape("could not download flow.pt")):
        download_weights(cache_dir=tmp_path / "cache", endpoint=f"http://127.0.0.1:{port}")


def test_unreachable_hub_is_a_weights_error(tmp_path: Path, hub: LocalHub) -> None:
    message = re.escape("could not download flow.pt from nvidia/PartPacker")
    with pytest.raises(WeightsError, match=message):
        download_weights(cache_dir=tmp_path / "cache", endpoint=hub.url + "/missing-mirror")
