"""A converted copy of each checkpoint for fast cold starts.

The published files are float32 pickles (flow.pt, vae.pt) and a float32 safetensors file
(DINOv2): every start reads them whole and converts them. The first load writes the converted
state dict (the model's dtype, prefix stripped, checked) as safetensors; later loads memory-map
that file straight onto the device. A cache entry is keyed by the source file's path, size and
modification time, so a re-downloaded checkpoint is converted again.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .files import write_atomically
from .weights import integrity_record, load_weights

log = logging.getLogger(__name__)


def cache_path(source: Path, dtype: torch.dtype, cache_dir: Path) -> Path:
    stat = source.stat()
    identity = f"{source.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    dtype_name = str(dtype).removeprefix("torch.")
    return cache_dir / f"{source.stem}-{dtype_name}-{digest}.safetensors"


def load_weights_cached(
    module: torch.nn.Module,
    path: Path,
    *,
    cache_dir: Path,
    prefix: str = "",
    skipped: tuple[str, ...] = (),
    dtype: torch.dtype,
    device: torch.device | str,
) -> torch.nn.Module:
    """`weights.load_weights`, through the cache: convert once, then map the converted file.

    The source's integrity check (weights/integrity.py) runs when it is converted; its record
    is kept in `cache_dir` too."""
    cached = cache_path(Path(path), dtype, cache_dir)
    if cached.is_file():
        try:
            state = load_file(cached, device=str(device))
            module.load_state_dict(state, strict=True, assign=True)
            log.info("loaded %s from the converted cache %s", path.name, cached)
            return module.eval()
        except (SafetensorError, OSError, RuntimeError) as error:
            log.warning("converted cache %s is unusable (%s); converting again", cached, error)
    record = integrity_record(cache_dir)
    load_weights(
        module, path, prefix=prefix, skipped=skipped, dtype=dtype, device=device, record=record
    )
    write_cache(module, cached)
    return module


def write_cache(module: torch.nn.Module, cached: Path) -> None:
    """A cache that cannot be written only costs speed, never the load."""
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        state = {
            key: value.detach().contiguous().cpu() for key, value in module.state_dict().items()
        }
        for leftover in cached.parent.glob(f".{cached.stem}.*{cached.suffix}"):
            leftover.unlink(missing_ok=True)  # from a process killed while writing
        write_atomically(cached, lambda temporary: save_file(state, temporary))
    except (OSError, SafetensorError, RuntimeError) as error:
        log.warning("cannot write the converted cache %s: %s", cached, error)
