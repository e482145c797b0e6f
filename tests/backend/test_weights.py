"""Weight files: finding them, fetching them from a (local) hub, reading them safely, loading them.

Tiny modules stand in for the models: their keys follow the official layouts (flow.pt under
`dit.`, vae.pt wrapped in {"model": ...}, DINOv2 in the hub's safetensors names)."""

from __future__ import annotations

import hashlib
import os
import pickle
import random
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
from reference import manifest
from safetensors.torch import save_file
from torch import nn

from backend.errors import Cancelled, WeightsError
from backend.weights import (
    WEIGHT_SOURCES,
    WeightFiles,
    check_state_dict,
    download_weights,
    identify_checkpoint,
    load_weights,
    read_layout,
    read_state_dict,
    resolve_weights,
)

# --- tiny modules in the official layouts --------------------------------------------------------


class FlowLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn1 = nn.Module()
        self.attn1.qkv_proj = nn.Linear(8, 24)
        self.adaln_linear = nn.Linear(8, 16)


class TinyFlow(nn.Module):
    """Keys as in flow.pt once `dit.` is stripped: proj_in, layers.0.attn1.qkv_proj, ..."""

    def __init__(self) -> None:
        super().__init__()
        self.proj_in = nn.Linear(4, 8)
        self.layers = nn.ModuleList([FlowLayer(), FlowLayer()])
        self.proj_out = nn.Linear(8, 4)


class TinyVAE(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj_up = nn.Linear(4, 8)
        self.decoder = nn.ModuleList([nn.Linear(8, 8), nn.Linear(8, 8)])
        self.proj_out = nn.Linear(8, 1)


class TinyDINOv2(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embeddings = nn.Module()
        self.embeddings.patch_embeddings = nn.Module()
        self.embeddings.patch_embeddings.projection = nn.Conv2d(3, 8, 2, stride=2)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList([nn.Module()])
        self.encoder.layer[0].attention = nn.Module()
        self.encoder.layer[0].attention.attention = nn.Module()
        self.encoder.layer[0].attention.attention.query = nn.Linear(8, 8)
        self.encoder.layer[0].attention.attention.key = nn.Linear(8, 8)


def random_state(module_class: type[nn.Module], seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return {key: value.detach().clone() for key, value in module_class().state_dict().items()}


def flow_state(dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    return {f"dit.{key}": value.to(dtype) for key, value in random_state(TinyFlow).items()}


def on_meta(module_class: type[nn.Module]) -> nn.Module:
    with torch.device("meta"):
        return module_class()


def assert_loaded(module: nn.Module, expected: dict[str, torch.Tensor], dtype: torch.dtype):
    loaded = module.state_dict()
    assert loaded.keys() == expected.keys()
    for key, value in expected.items():
        assert loaded[key].device.type == "cpu"
        assert loaded[key].dtype == dtype
        torch.testing.assert_close(loaded[key], value.to(dtype), rtol=0, atol=0)
    assert not module.training


# --- loading good files --------------------------------------------------------------------------


@pytest.mark.parametrize("file_dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_flow_pickle_in_any_float_dtype_loads_into_a_meta_module(
    tmp_path: Path, file_dtype: torch.dtype
) -> None:
    state = flow_state(file_dtype)
    torch.save(state, tmp_path / "flow.pt")
    module = load_weights(
        on_meta(TinyFlow), tmp_path / "flow.pt", prefix="dit.", dtype=torch.float32, device="cpu"
    )
    expected = {key.removeprefix("dit."): value for key, value in state.items()}
    assert_loaded(module, expected, torch.float32)


@pytest.mark.parametrize("wrapper", ["model", "state_dict"])
def test_wrapped_vae_pickle_is_unwrapped(tmp_path: Path, wrapper: str) -> None:
    state = random_state(TinyVAE, seed=1)
    torch.save({wrapper: state, "epoch": 12, "note": "trained"}, tmp_path / "vae.pt")
    module = load_weights(on_meta(TinyVAE), tmp_path / "vae.pt", dtype=torch.bfloat16, device="cpu")
    assert_loaded(module, state, torch.bfloat16)


def test_safetensors_dinov2_loads_and_converts(tmp_path: Path) -> None:
    state = {key: value.half() for key, value in random_state(TinyDINOv2, seed=2).items()}
    save_file(state, tmp_path / "model.safetensors")
    module = load_weights(
        on_meta(TinyDINOv2), tmp_path / "model.safetensors", dtype=torch.bfloat16, device="cpu"
    )
    assert_loaded(module, state, torch.bfloat16)


def test_pre_zip_torch_format_loads_without_mmap(tmp_path: Path) -> None:
    state = flow_state()
    torch.save(state, tmp_path / "flow.pt", _use_new_zipfile_serialization=False)
    read = read_state_dict(tmp_path / "flow.pt")
    assert read.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(read[key], value)


def test_loaded_module_really_computes_with_the_file_weights(tmp_path: Path) -> None:
    state = random_state(TinyVAE, seed=3)
    torch.save({"model": state}, tmp_path / "vae.pt")
    module = load_weights(on_meta(TinyVAE), tmp_path / "vae.pt", dtype=torch.float32, device="cpu")
    x = torch.randn(2, 4)
    expected = x @ state["proj_up.weight"].T + state["proj_up.bias"]
    torch.testing.assert_close(module.proj_up(x), expected)


@pytest.mark.parametrize("writer", ["torch", "safetensors"])
def test_layout_reads_keys_shapes_and_dtypes_without_the_data(tmp_path: Path, writer: str):
    state = flow_state(torch.bfloat16)
    path = tmp_path / "flow.pt"
    if writer == "torch":
        torch.save(state, path)
    else:
        save_file(state, path)
    layout = read_layout(path)
    assert layout.keys() == state.keys()
    for key, value in layout.items():
        assert value.is_meta
        assert (value.shape, value.dtype) == (state[key].shape, torch.bfloat16)


def test_layout_is_enough_to_spot_a_mixup(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_file(random_state(TinyVAE), path)
    expected = {key: value.shape for key, value in random_state(TinyDINOv2).items()}
    with pytest.raises(WeightsError, match=re.escape("looks like vae.pt")):
        check_state_dict(read_layout(path), expected, file=path, what="DINOv2")


def test_layout_of_a_broken_header_is_a_weights_error(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_file(random_state(TinyDINOv2), path)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(WeightsError, match="truncated or corrupt"):
        read_layout(path)


# --- refusing bad files --------------------------------------------------------------------------


def write_truncated_pickle(path: Path) -> None:
    torch.save(flow_state(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def write_truncated_safetensors(path: Path) -> None:
    save_file(random_state(TinyDINOv2), path)
    path.write_bytes(path.read_bytes()[:-100])


def write_random_bytes(path: Path) -> None:
    path.write_bytes(b"\x17" + random.Random(7).randbytes(4096))


BROKEN_FILES = {
    "truncated pickle": (write_truncated_pickle, "truncated or corrupt"),
    "truncated safetensors": (write_truncated_safetensors, "truncated or corrupt"),
    "random bytes": (write_random_bytes, "not a checkpoint"),
    "empty": (lambda path: path.write_bytes(b""), "is empty"),
    "text": (lambda path: path.write_text("version https://git-lfs\nsize 5\n"), "not a checkpoint"),
}


@pytest.mark.parametrize("case", BROKEN_FILES)
def test_broken_file_is_a_weights_error_naming_it(tmp_path: Path, case: str) -> None:
    write, phrase = BROKEN_FILES[case]
    path = tmp_path / "broken.bin"
    write(path)
    with pytest.raises(WeightsError) as caught:
        read_state_dict(path)
    assert str(path) in caught.value.message
    assert phrase in caught.value.message
    assert caught.value.hint


def test_missing_file_is_a_weights_error(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="does not exist") as caught:
        load_weights(on_meta(TinyVAE), tmp_path / "vae.pt", dtype=torch.float32, device="cpu")
    assert str(tmp_path / "vae.pt") in caught.value.message


class MakesDirectory:
    """Unpickling this would create a directory: the marker that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_checkpoint_with_code_is_refused_and_the_code_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "code_ran"
    path = tmp_path / "flow.pt"
    torch.save({"dit.proj_in.weight": torch.ones(2), "payload": MakesDirectory(marker)}, path)
    with pytest.raises(WeightsError, match=r"refusing to load .* contains code") as caught:
        read_state_dict(path)
    assert str(path) in caught.value.message
    assert not marker.exists()
    # The payload is real: an unsafe load would have run it.
    torch.load(path, weights_only=False)
    assert marker.is_dir()


def test_plain_pickle_with_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "code_ran"
    path = tmp_path / "vae.pt"
    path.write_bytes(pickle.dumps({"model": MakesDirectory(marker)}, protocol=2))
    with pytest.raises(WeightsError, match="refusing to load"):
        read_state_dict(path)
    assert not marker.exists()


def test_non_tensor_values_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "flow.pt"
    torch.save({"dit.proj_in.weight": torch.ones(2), "dit.config": {"depth": 24}}, path)
    with pytest.raises(WeightsError, match=re.escape("dit.config")) as caught:
        read_state_dict(path)
    assert str(path) in caught.value.message


def test_integer_tensors_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_file({"embeddings.cls_token": torch.arange(6).reshape(1, 1, 6)}, path)
    with pytest.raises(WeightsError, match=r"non-floating-point.*embeddings\.cls_token"):
        read_state_dict(path)


def test_a_pickled_list_is_not_a_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "flow.pt"
    torch.save([torch.ones(3)], path)
    with pytest.raises(WeightsError, match="holds a list"):
        read_state_dict(path)


# --- keys and shapes -----------------------------------------------------------------------------


def test_vae_given_as_flow_is_recognised(tmp_path: Path) -> None:
    path = tmp_path / "flow.pt"
    torch.save({"model": random_state(TinyVAE)}, path)
    with pytest.raises(WeightsError) as caught:
        load_weights(on_meta(TinyFlow), path, prefix="dit.", dtype=torch.float32, device="cpu")
    message = caught.value.message
    assert str(path) in message
    assert "looks like vae.pt" in message
    assert "proj_up.weight" in message  # unexpected
    assert "layers.0.attn1.qkv_proj.weight" in message  # missing


def test_flow_given_as_vae_is_recognised(tmp_path: Path) -> None:
    path = tmp_path / "vae.pt"
    torch.save(flow_state(), path)
    with pytest.raises(WeightsError, match=re.escape("looks like flow.pt")):
        load_weights(on_meta(TinyVAE), path, dtype=torch.float32, device="cpu")


def test_dinov2_given_as_flow_is_recognised(tmp_path: Path) -> None:
    path = tmp_path / "flow.pt"
    save_file(random_state(TinyDINOv2), path)
    with pytest.raises(WeightsError, match=re.escape("looks like model.safetensors")):
        load_weights(on_meta(TinyFlow), path, prefix="dit.", dtype=torch.float32, device="cpu")


def test_missing_unexpected_and_misshaped_keys_are_listed(tmp_path: Path) -> None:
    state = flow_state()
    del state["dit.proj_out.bias"]
    state["dit.layers.5.ff.weight"] = torch.ones(3)
    state["dit.proj_in.weight"] = torch.ones(8, 5)
    path = tmp_path / "flow.pt"
    torch.save(state, path)
    with pytest.raises(WeightsError) as caught:
        load_weights(on_meta(TinyFlow), path, prefix="dit.", dtype=torch.float32, device="cpu")
    message = caught.value.message
    assert str(path) in message
    assert "1 missing: proj_out.bias" in message
    assert "1 unexpected: layers.5.ff.weight" in message
    assert "proj_in.weight [8, 5] (expected [8, 4])" in message
    assert "looks like" not in message  # it is a flow checkpoint, just not this one


def test_long_key_lists_are_cut_with_a_count() -> None:
    expected = {f"layers.{i}.weight": (2,) for i in range(12)}
    with pytest.raises(WeightsError) as caught:
        check_state_dict({}, expected, file=Path("x.pt"), what="test")
    message = caught.value.message
    assert "12 missing" in message
    assert "layers.4.weight, ... (7 more)" in message
    assert "layers.5.weight" not in message


def test_matching_state_passes_the_check() -> None:
    state = random_state(TinyVAE)
    check_state_dict(state, {k: v.shape for k, v in state.items()}, file=Path("v"), what="v")


def manifest_state(entries: list[dict], key: str = "key") -> dict[str, torch.Tensor]:
    return {entry[key]: torch.empty(entry["shape"], device="meta") for entry in entries}


def test_full_size_manifests_are_identified() -> None:
    dit = manifest("dit_keys")["keys"]
    vae = manifest("vae_keys")["keys"]
    dinov2 = manifest("dinov2_giant_keys")
    assert identify_checkpoint(entry["key"] for entry in dit).startswith("flow.pt")
    assert identify_checkpoint(entry["key"] for entry in vae).startswith("vae.pt")
    hub_keys = (entry["key"] for entry in dinov2["hub_checkpoint_keys"])
    assert identify_checkpoint(hub_keys).startswith("model.safetensors")
    module_keys = [entry["key"] for entry in dinov2["transformers5_module_keys"]]
    assert "transformers>=5" in identify_checkpoint(module_keys)


def test_full_size_mixups_are_named() -> None:
    dinov2 = manifest("dinov2_giant_keys")
    vae_expected = {e["key"]: tuple(e["shape"]) for e in manifest("vae_keys")["keys"]}
    hub_expected = {e["key"]: tuple(e["shape"]) for e in dinov2["hub_checkpoint_keys"]}
    with pytest.raises(WeightsError, match=r"244 missing.*looks like flow\.pt"):
        check_state_dict(
            manifest_state(manifest("dit_keys")["keys"]),
            vae_expected,
            file=Path("vae.pt"),
            what="vae.pt",
        )
    with pytest.raises(WeightsError, match="transformers>=5"):
        check_state_dict(
            manifest_state(dinov2["transformers5_module_keys"]),
            hub_expected,
            file=Path("model.safetensors"),
            what="DINOv2",
        )


# --- finding the files ---------------------------------------------------------------------------


def fill_folder(folder: Path, dinov2_name: str = "model.safetensors") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(flow_state(), folder / "flow.pt")
    torch.save({"model": random_state(TinyVAE)}, folder / "vae.pt")
    (folder / dinov2_name).parent.mkdir(parents=True, exist_ok=True)
    save_file(random_state(TinyDINOv2), folder / dinov2_name)


@pytest.mark.parametrize("dinov2_name", ["model.safetensors", "dinov2-giant/model.safetensors"])
def test_local_folder(tmp_path: Path, dinov2_name: str) -> None:
    fill_folder(tmp_path, dinov2_name)
    files = resolve_weights(tmp_path)
    assert files == WeightFiles(tmp_path / "flow.pt", tmp_path / "vae.pt", tmp_path / dinov2_name)


def test_local_folder_with_missing_files_lists_them(tmp_path: Path) -> None:
    torch.save(flow_state(), tmp_path / "flow.pt")
    with pytest.raises(WeightsError) as caught:
        resolve_weights(tmp_path)
    message = caught.value.message
    assert "vae.pt" in message
    assert "model.safetensors" in message
    assert "flow.pt" not in message
    assert str(tmp_path) in message
    assert "python -m backend download" in caught.value.hint


def test_missing_local_folder(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="does not exist"):
        resolve_weights(tmp_path / "nowhere")


PARTPACKER_COMMIT = "a" * 40
DINOV2_COMMIT = "b" * 40


def fill_hub_cache(cache: Path) -> WeightFiles:
    """The Hugging Face cache layout: models--ORG--NAME/{refs/main, snapshots/COMMIT/FILE}."""
    partpacker = cache / "models--nvidia--PartPacker"
    dinov2 = cache / "models--facebook--dinov2-giant"
    for repo, commit in ((partpacker, PARTPACKER_COMMIT), (dinov2, DINOV2_COMMIT)):
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text(commit)
    flow = partpacker / "snapshots" / PARTPACKER_COMMIT / "flow.pt"
    vae = partpacker / "snapshots" / PARTPACKER_COMMIT / "vae.pt"
    model = dinov2 / "snapshots" / DINOV2_COMMIT / "model.safetensors"
    flow.parent.mkdir(parents=True)
    model.parent.mkdir(parents=True)
    torch.save(flow_state(), flow)
    torch.save({"model": random_state(TinyVAE)}, vae)
    save_file(random_state(TinyDINOv2), model)
    return WeightFiles(flow, vae, model)


def test_hub_cache_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    expected = fill_hub_cache(tmp_path)
    assert resolve_weights(cache_dir=tmp_path) == expected
    assert resolve_weights(cache_dir=tmp_path, revision=PARTPACKER_COMMIT) == expected


def test_hub_cache_missing_files_are_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    expected = fill_hub_cache(tmp_path)
    expected.vae.unlink()
    with pytest.raises(WeightsError) as caught:
        resolve_weights(cache_dir=tmp_path)
    assert "vae.pt from nvidia/PartPacker" in caught.value.message
    assert "flow.pt" not in caught.value.message
    assert "HF_HUB_OFFLINE" in caught.value.hint


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
