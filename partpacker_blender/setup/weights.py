"""The model weights the backend needs, and fetching them through `python -m backend download`.
No bpy: the backend's own weights module cannot be imported here (no torch in Blender)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from .runner import RunStatus, Step


@dataclass(frozen=True)
class WeightFile:
    repo_id: str
    filename: str
    approx_bytes: int
    what: str


# The same files as backend/weights/sources.py's WEIGHT_SOURCES (a test checks they agree). Sizes
# are the published files' approximate sizes, for the panel and the disk-space estimate.
WEIGHT_FILES = (
    WeightFile("nvidia/PartPacker", "flow.pt", 5_000_000_000, "flow-matching DiT"),
    WeightFile("nvidia/PartPacker", "vae.pt", 1_400_000_000, "VAE decoder"),
    WeightFile("facebook/dinov2-giant", "model.safetensors", 4_500_000_000, "DINOv2 image encoder"),
)
TOTAL_BYTES = sum(weight.approx_bytes for weight in WEIGHT_FILES)

UNITS = {"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
# tqdm with unit="B", unit_scale=True: "flow.pt:  45%|####5     | 2.25G/5.00G [00:10<...]"
TQDM_BYTES = re.compile(
    r"^\s*(?P<name>[^:|]*?):?\s*\d+%\|.*?\|\s*"
    r"(?P<done>[\d.]+)(?P<done_unit>[kKMGT]?)B?/(?P<total>[\d.]+)(?P<total_unit>[kKMGT]?)B?"
)


def human_size(size: float) -> str:
    """Decimal units, as download sizes are quoted: 1.4 GB, 256.0 MB, 300 B."""
    units = ("B", "KB", "MB", "GB")
    exponent = 0
    while size >= 1000 and exponent < len(units) - 1:
        size, exponent = size / 1000, exponent + 1
    return f"{size:.0f} B" if exponent == 0 else f"{size:.1f} {units[exponent]}"


def download_step(
    python: Path,
    backend_root: Path,
    env: dict[str, str],
    *,
    local_dir: Path | None = None,
    cache_dir: Path | None = None,
) -> Step:
    """Fetch the weights into `local_dir`, or the Hugging Face cache (`cache_dir` or its default).

    A cancelled or broken download goes on from where it stopped on the next run."""
    command = [str(python), "-u", "-m", "backend", "download"]
    if local_dir is not None:
        command += ["--local-dir", str(local_dir)]
    elif cache_dir is not None:
        command += ["--cache-dir", str(cache_dir)]
    return Step("Download the weights", command, read_download_line, cwd=backend_root, env=env)


def read_download_line(line: str, status: RunStatus) -> None:
    """Byte progress from the download command: a JSON progress line, or a tqdm byte bar."""
    text = line.strip()
    if text.startswith("{"):
        _read_json_progress(text, status)
        return
    match = TQDM_BYTES.match(text)
    if match:
        status.done_bytes = round(float(match["done"]) * UNITS[match["done_unit"]])
        status.total_bytes = round(float(match["total"]) * UNITS[match["total_unit"]])
        if match["name"].strip():
            status.detail = f"Downloading {match['name'].strip()}"
    elif text:
        status.detail = text


def _read_json_progress(text: str, status: RunStatus) -> None:
    try:
        event = json.loads(text)
    except ValueError:
        status.detail = text
        return
    if not isinstance(event, dict):
        return
    done = event.get("downloaded", event.get("done_bytes"))
    total = event.get("total", event.get("total_bytes"))
    if isinstance(done, int) and isinstance(total, int):
        status.done_bytes, status.total_bytes = done, total
    name = event.get("file") or event.get("filename")
    if name:
        status.detail = f"Downloading {name}"
