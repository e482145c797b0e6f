"""The three weight files: where they are, fetching them, and reading, checking and loading
them safely.

Files: `flow.pt` and `vae.pt` from `nvidia/PartPacker` (torch pickles of state dicts) and
`model.safetensors` from `facebook/dinov2-giant`. They come either from one local folder or from
the Hugging Face cache. A local folder holds:

    DIR/flow.pt
    DIR/vae.pt
    DIR/model.safetensors            (or DIR/dinov2-giant/model.safetensors)

which is what `python -m backend download --local-dir DIR` writes.

One job per module: sources (what the files are), locating, download (with its byte tally),
reading (format sniffing, tensors or layout), integrity (damaged bytes, checked once), checking
(keys and shapes, which file it looks like) and loading (assigning tensors to a model).
Loading is check bytes → read → strip prefix → check keys and shapes → convert → assign.
"""

from .checking import check_state_dict, identify_checkpoint
from .download import ByteProgress, ByteTally, download_weights
from .integrity import IntegrityRecord, integrity_record, verify_integrity
from .loading import convert_state_dict, drop_skipped, load_weights, strip_prefix
from .locating import resolve_weights
from .reading import read_layout, read_state_dict
from .sources import (
    DINOV2_REPO,
    DOWNLOAD_HINT,
    PARTPACKER_REPO,
    WEIGHT_SOURCES,
    WeightFiles,
    WeightSource,
    describe,
)

__all__ = [
    "DINOV2_REPO",
    "DOWNLOAD_HINT",
    "PARTPACKER_REPO",
    "WEIGHT_SOURCES",
    "ByteProgress",
    "ByteTally",
    "IntegrityRecord",
    "WeightFiles",
    "WeightSource",
    "check_state_dict",
    "convert_state_dict",
    "describe",
    "download_weights",
    "drop_skipped",
    "identify_checkpoint",
    "integrity_record",
    "load_weights",
    "read_layout",
    "read_state_dict",
    "resolve_weights",
    "strip_prefix",
    "verify_integrity",
]
