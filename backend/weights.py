"""The three weight files: where they are, fetching them from the hub, and reading them safely.

Files: `flow.pt` and `vae.pt` from `nvidia/PartPacker` (torch pickles of state dicts) and
`model.safetensors` from `facebook/dinov2-giant`. They come either from one local folder or from
the Hugging Face cache. A local folder holds:

    DIR/flow.pt
    DIR/vae.pt
    DIR/model.safetensors            (or DIR/dinov2-giant/model.safetensors)

which is what `python -m backend download --local-dir DIR` writes.

Pickles are only ever opened with `torch.load(weights_only=True)`, so a file that carries code is
refused, never run. Loading is read → strip prefix → check keys and shapes → convert → assign.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from .errors import CancelCheck, Cancelled, WeightsError
from .hub_download import download_to_cache, download_to_folder, hub_offline, remote_file

log = logging.getLogger(__name__)

PARTPACKER_REPO = "nvidia/PartPacker"
DINOV2_REPO = "facebook/dinov2-giant"
DOWNLOAD_HINT = "run `python -m backend download`, or point --weights-dir at a folder with them"

# Approximate sizes: parameter counts from reference/manifests × 4 bytes (fp32); pickle and
# safetensors headers add well under 1 MB.
FLOW_BYTES = 1_249_511_488 * 4  # about 5.0 GB: the 1.25B-parameter flow DiT
VAE_BYTES = 340_296_833 * 4  # about 1.4 GB: the 0.34B-parameter VAE (encoder included)
DINOV2_BYTES = 1_136_480_768 * 4  # about 4.5 GB: DINOv2 ViT-g/14, 1.14B parameters

ByteProgress = Callable[[int, int, str], None]
"""(downloaded bytes, total bytes, file name), over all three files together."""


@dataclass(frozen=True)
class WeightSource:
    field: str
    """The `WeightFiles` attribute this file fills."""
    repo_id: str
    filename: str
    approx_bytes: int
    description: str
    local_names: tuple[str, ...]
    """Paths accepted inside a local weights folder, in the order they are tried."""
    follows_revision: bool
    """Whether `--revision` applies: it names a PartPacker commit, not a DINOv2 one."""


WEIGHT_SOURCES: tuple[WeightSource, ...] = (
    WeightSource(
        "flow",
        PARTPACKER_REPO,
        "flow.pt",
        FLOW_BYTES,
        "flow-matching DiT (keys dit.*)",
        ("flow.pt",),
        True,
    ),
    WeightSource(
        "vae",
        PARTPACKER_REPO,
        "vae.pt",
        VAE_BYTES,
        "part VAE: latents to occupancy",
        ("vae.pt",),
        True,
    ),
    WeightSource(
        "dinov2",
        DINOV2_REPO,
        "model.safetensors",
        DINOV2_BYTES,
        "DINOv2 ViT-g/14 image encoder",
        ("model.safetensors", "dinov2-giant/model.safetensors"),
        False,
    ),
)


@dataclass(frozen=True)
class WeightFiles:
    flow: Path
    vae: Path
    dinov2: Path


def describe(source: WeightSource) -> str:
    return f"{source.filename} from {source.repo_id}"


# --- where the files are -------------------------------------------------------------------------


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
        raise WeightsError(_missing_message(missing, f"weights folder {folder}"), DOWNLOAD_HINT)
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
            revision=_revision_for(source, revision),
            cache_dir=cache_dir,
            local_files_only=True,
        )
    except LocalEntryNotFoundError:
        return None
    return Path(path)


def _revision_for(source: WeightSource, revision: str | None) -> str | None:
    return revision if source.follows_revision else None


# --- download ------------------------------------------------------------------------------------


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
            source.repo_id, source.filename, _revision_for(source, revision), endpoint
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


# --- reading a checkpoint ------------------------------------------------------------------------

ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTO = b"\x80"
WRAPPER_KEYS = ("model", "state_dict")


# safetensors' dtype names; any other one is refused like a non-float tensor.
SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint, on the CPU, in the file's dtypes (pickles memory-mapped)."""
    path = Path(path)
    return _tensors_only(_unwrap(_load(path, layout_only=False), path), path)


def read_layout(path: Path) -> dict[str, torch.Tensor]:
    """Keys, shapes and dtypes as meta tensors, without reading the data (for `doctor`):
    only the pickle or the safetensors header is read, except for pre-zip torch files."""
    path = Path(path)
    tensors = _tensors_only(_unwrap(_load(path, layout_only=True), path), path)
    return {key: torch.empty_like(value, device="meta") for key, value in tensors.items()}


def _load(path: Path, *, layout_only: bool) -> object:
    head = _read_head(path)
    if head.startswith(ZIP_MAGIC):
        return _torch_load(path, mmap=True)
    if head.startswith(PICKLE_PROTO):
        return _torch_load(path, mmap=False)  # the pre-zip torch format cannot be mapped
    if _looks_like_safetensors(head):
        return _safetensors_layout(path) if layout_only else _safetensors_load(path)
    raise WeightsError(
        f"{path} is not a checkpoint (neither a PyTorch file nor safetensors)", DOWNLOAD_HINT
    )


def _read_head(path: Path) -> bytes:
    if not path.is_file():
        raise WeightsError(f"weight file {path} does not exist", DOWNLOAD_HINT)
    with path.open("rb") as file:
        head = file.read(16)
    if not head:
        raise WeightsError(f"weight file {path} is empty", "download it again: " + DOWNLOAD_HINT)
    return head


def _looks_like_safetensors(head: bytes) -> bool:
    """8-byte little-endian header length, then the JSON header."""
    return len(head) > 8 and head[8:9] == b"{"


def _torch_load(path: Path, *, mmap: bool) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        raise _refused(path, error) from error
    except (RuntimeError, EOFError, ValueError, OSError) as error:
        raise _corrupt(path, error) from error


def _refused(path: Path, error: pickle.UnpicklingError) -> WeightsError:
    """torch's weights-only unpickler stopped: at a global (code to call) or another object."""
    lines = [line.strip() for line in str(error).splitlines()]
    reason = next((line for line in lines if "Unsupported" in line or "GLOBAL" in line), "")
    what = "code" if "GLOBAL" in reason else "something other than tensors"
    return WeightsError(
        f"refusing to load {path}: it contains {what}, not just tensors "
        f"({reason or _first_line(error)})",
        "use the official file from the Hugging Face hub: " + DOWNLOAD_HINT,
    )


def _safetensors_load(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise _corrupt(path, error) from error


def _safetensors_layout(path: Path) -> dict[str, torch.Tensor]:
    try:
        with safe_open(path, framework="pt") as file:
            shapes = {key: file.get_slice(key) for key in file.keys()}  # noqa: SIM118
            return {
                key: torch.empty(
                    part.get_shape(), dtype=_safetensors_dtype(part, key, path), device="meta"
                )
                for key, part in shapes.items()
            }
    except (SafetensorError, OSError, ValueError) as error:
        raise _corrupt(path, error) from error


def _safetensors_dtype(part: Any, key: str, path: Path) -> torch.dtype:
    name = part.get_dtype()
    if name not in SAFETENSORS_DTYPES:
        raise WeightsError(f"{path} holds {key} in an unsupported dtype {name}", DOWNLOAD_HINT)
    return SAFETENSORS_DTYPES[name]


def _corrupt(path: Path, error: BaseException) -> WeightsError:
    return WeightsError(
        f"weight file {path} is truncated or corrupt ({_first_line(error)})",
        "delete it and download it again: " + DOWNLOAD_HINT,
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _unwrap(loaded: object, path: Path) -> Mapping[str, object]:
    """The state dict itself, also when wrapped as {"model": ...} or {"state_dict": ...}."""
    if not isinstance(loaded, Mapping):
        raise WeightsError(
            f"{path} holds a {type(loaded).__name__}, not a state dict of tensors", DOWNLOAD_HINT
        )
    for key in WRAPPER_KEYS:
        if isinstance(loaded.get(key), Mapping):
            return loaded[key]
    return loaded


def _tensors_only(state: Mapping[str, object], path: Path) -> dict[str, torch.Tensor]:
    not_tensors = [key for key, value in state.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise WeightsError(
            f"{path} is not a plain state dict: {_first_few(not_tensors)} "
            "hold something other than tensors",
            DOWNLOAD_HINT,
        )
    tensors: dict[str, torch.Tensor] = dict(state)  # type: ignore[arg-type]
    not_float = [key for key, value in tensors.items() if not value.is_floating_point()]
    if not_float:
        dtype = tensors[not_float[0]].dtype
        raise WeightsError(
            f"{path} holds non-floating-point tensors where weights are expected: "
            f"{_first_few(not_float)} ({dtype})",
            DOWNLOAD_HINT,
        )
    return tensors


# --- checking it against the model ---------------------------------------------------------------

SHOWN = 5


@dataclass(frozen=True)
class KeyFamily:
    label: str
    markers: tuple[str, ...]
    """Substrings of keys that only this kind of checkpoint has."""


# Ordered: the transformers>=5 DINOv2 shares its embeddings with the hub layout, so it goes first.
KEY_FAMILIES = (
    KeyFamily("flow.pt (the PartPacker flow DiT)", ("dit.", "attn1.qkv_proj", "adaln_linear")),
    KeyFamily("vae.pt (the PartPacker VAE)", ("proj_up.", "decoder.", "perceiver", "attn_query.")),
    KeyFamily(
        "a DINOv2 file in the transformers>=5 module layout (q_proj/gate_proj names), not the "
        f"hub's model.safetensors from {DINOV2_REPO}",
        ("attention.q_proj", "mlp.gate_proj", "mlp.up_proj"),
    ),
    KeyFamily(
        f"model.safetensors (DINOv2 from {DINOV2_REPO})",
        ("embeddings.patch_embeddings", "attention.attention.query"),
    ),
)


def identify_checkpoint(keys: Iterable[str]) -> str | None:
    """Which of the known files these keys look like, by the family most of them belong to."""
    keys = list(keys)
    counts = {
        family.label: sum(any(marker in key for marker in family.markers) for key in keys)
        for family in KEY_FAMILIES
    }
    label, count = max(counts.items(), key=lambda item: item[1])
    return label if count else None


def check_state_dict(
    state: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Size | tuple[int, ...]],
    *,
    file: Path,
    what: str,
) -> None:
    """Keys and shapes must match exactly; the error says what differs and, when the file is
    another of the known checkpoints, which one it looks like."""
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    misshaped = [
        f"{key} {list(state[key].shape)} (expected {list(expected[key])})"
        for key in expected
        if key in state and tuple(state[key].shape) != tuple(expected[key])
    ]
    if not (missing or unexpected or misshaped):
        return
    problems = [
        f"{len(items)} {name}: {_first_few(items)}"
        for name, items in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("with the wrong shape", misshaped),
        )
        if items
    ]
    message = f"{file} does not match the {what} weights: " + "; ".join(problems)
    looks_like = identify_checkpoint(state)
    if looks_like is not None and looks_like != what:
        message += f". This looks like {looks_like}"
    raise WeightsError(message, f"check which file is which; {DOWNLOAD_HINT}")


def _first_few(items: list[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    return shown + (f", ... ({len(items) - SHOWN} more)" if len(items) > SHOWN else "")


# --- loading it into a module --------------------------------------------------------------------


def load_weights(
    module: torch.nn.Module,
    path: Path,
    *,
    prefix: str = "",
    dtype: torch.dtype,
    device: torch.device | str,
) -> torch.nn.Module:
    """Fill a module built on the meta device from `path`; returns it in eval mode.

    `prefix` is stripped from the file's keys (flow.pt stores the DiT under "dit.")."""
    expected = {key: value.shape for key, value in module.state_dict().items()}
    what = identify_checkpoint(prefix + key for key in expected) or type(module).__name__
    state = strip_prefix(read_state_dict(path), prefix)
    check_state_dict(state, expected, file=Path(path), what=what)
    module.load_state_dict(convert_state_dict(state, dtype, device), strict=True, assign=True)
    log.info("loaded %s from %s (%s on %s)", what, path, dtype, device)
    return module.eval()


def strip_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Keys without the prefix stay as they are, so a wrong file still shows its own names."""
    if not prefix:
        return state
    return {key.removeprefix(prefix): value for key, value in state.items()}


def convert_state_dict(
    state: dict[str, torch.Tensor], dtype: torch.dtype, device: torch.device | str
) -> dict[str, torch.Tensor]:
    """Every tensor to `dtype` on `device`. Empties `state` as it goes, so the file's copy of a
    tensor is freed once its converted copy exists."""
    converted = {}
    for key in list(state):
        converted[key] = state.pop(key).to(device=device, dtype=dtype)
    return converted
