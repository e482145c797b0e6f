"""Reading a checkpoint: sniffing its format, then its tensors or only their layout.

Pickles are only ever opened with `torch.load(weights_only=True)`, so a file that carries code
is refused, never run."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from ..errors import WeightsError
from .checking import first_few
from .sources import DOWNLOAD_HINT

ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTO = b"\x80"
WRAPPER_KEYS = ("model", "state_dict")
SAFETENSORS_SUFFIX = ".safetensors"

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
    head = read_head(path)
    is_pickle = head.startswith((ZIP_MAGIC, PICKLE_PROTO))
    if is_pickle and path.suffix == SAFETENSORS_SUFFIX:
        raise WeightsError(
            f"{path} is a PyTorch pickle, not the safetensors file its name says",
            "put the hub's model.safetensors there: " + DOWNLOAD_HINT,
        )
    if head.startswith(ZIP_MAGIC):
        return _torch_load(path, mmap=True)
    if head.startswith(PICKLE_PROTO):
        return _torch_load(path, mmap=False)  # the pre-zip torch format cannot be mapped
    if looks_like_safetensors(head):
        return _safetensors_layout(path) if layout_only else _safetensors_load(path)
    raise WeightsError(
        f"{path} is not a checkpoint (neither a PyTorch file nor safetensors)", DOWNLOAD_HINT
    )


def read_head(path: Path) -> bytes:
    """The file's first bytes; a missing, unreadable or empty file is a WeightsError."""
    if path.is_dir():
        raise WeightsError(f"{path} is a folder, not a weight file", DOWNLOAD_HINT)
    if not path.is_file():
        raise WeightsError(f"weight file {path} does not exist", DOWNLOAD_HINT)
    try:
        with path.open("rb") as file:
            head = file.read(16)
    except OSError as error:
        raise unreadable(path, error) from error
    if not head:
        raise WeightsError(f"weight file {path} is empty", "download it again: " + DOWNLOAD_HINT)
    return head


def unreadable(path: Path, error: OSError) -> WeightsError:
    return WeightsError(
        f"cannot read weight file {path}: {error.strerror or error}",
        "check the file's permissions and the disk it is on",
    )


def looks_like_safetensors(head: bytes) -> bool:
    """8-byte little-endian header length, then the JSON header."""
    return len(head) > 8 and head[8:9] == b"{"


def _torch_load(path: Path, *, mmap: bool) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        raise _refused(path, error) from error
    except (RuntimeError, EOFError, ValueError, OSError) as error:
        raise corrupt(path, error) from error


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
        raise corrupt(path, error) from error


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
        raise corrupt(path, error) from error


def _safetensors_dtype(part: Any, key: str, path: Path) -> torch.dtype:
    name = part.get_dtype()
    if name not in SAFETENSORS_DTYPES:
        raise WeightsError(f"{path} holds {key} in an unsupported dtype {name}", DOWNLOAD_HINT)
    return SAFETENSORS_DTYPES[name]


def corrupt(path: Path, error: BaseException | str) -> WeightsError:
    reason = error if isinstance(error, str) else _first_line(error)
    return WeightsError(
        f"weight file {path} is truncated or corrupt ({reason})",
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
            f"{path} is not a plain state dict: {first_few(not_tensors)} "
            "hold something other than tensors",
            DOWNLOAD_HINT,
        )
    tensors: dict[str, torch.Tensor] = dict(state)  # type: ignore[arg-type]
    not_float = [key for key, value in tensors.items() if not value.is_floating_point()]
    if not_float:
        dtype = tensors[not_float[0]].dtype
        raise WeightsError(
            f"{path} holds non-floating-point tensors where weights are expected: "
            f"{first_few(not_float)} ({dtype})",
            DOWNLOAD_HINT,
        )
    return tensors
