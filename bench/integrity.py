"""Weights integrity check: its cost on a large checkpoint the first time, and once remembered.

    python bench/integrity.py            # a 1.5 GB float32 checkpoint in a temporary folder
    python bench/integrity.py --gb 5 --folder /big/disk

Writes a random float32 state dict as torch saves it (zip, flow.pt's format) and the same file
as the Hugging Face cache keeps an LFS file (blobs/<sha256>), then times, in this process:
mapping the file with torch.load (before any tensor is read),
reading every byte once (what converting the tensors for the device costs at least: the
baseline), the first check (every zip member's CRC-32; the sha256 for the hub file) and a
later start's check, answered from the record by size and modification time. The OS file
cache is warm (the file was just written): a cold disk adds its read time to the first check,
and only to it.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.weights import IntegrityRecord, verify_integrity  # noqa: E402

TENSOR_ELEMENTS = 16 << 20  # 64 MB float32 tensors, like the big layers of the DiT


def write_checkpoint(path: Path, gigabytes: float) -> None:
    count = max(1, round(gigabytes * 1e9 / (TENSOR_ELEMENTS * 4)))
    generator = torch.Generator().manual_seed(0)
    state = {
        f"dit.layers.{index}.weight": torch.randn(TENSOR_ELEMENTS, generator=generator)
        for index in range(count)
    }
    torch.save(state, path)


def as_hub_blob(path: Path, cache: Path) -> Path:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    blob = cache / "blobs" / digest
    blob.parent.mkdir(parents=True)
    shutil.copy(path, blob)
    pointer = cache / "snapshots" / ("0" * 40) / path.name
    pointer.parent.mkdir(parents=True)
    pointer.symlink_to(Path("..", "..", "blobs", digest))
    return pointer


def read_all(path: Path) -> None:
    with path.open("rb") as file:
        while file.read(8 << 20):
            pass


def seconds(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--gb", type=float, default=1.5, help="checkpoint size (default 1.5)")
    parser.add_argument("--folder", type=Path, default=None, help="where to write it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.folder) as scratch:
        folder = Path(scratch)
        local = folder / "flow.pt"
        write_checkpoint(local, args.gb)
        hub = as_hub_blob(local, folder / "models--nvidia--PartPacker")
        size = local.stat().st_size
        rows = [
            ("reading every byte (baseline)", seconds(lambda: read_all(local))),
            (
                "torch.load, mmap",
                seconds(lambda: torch.load(local, mmap=True, weights_only=True)),
            ),
        ]
        for name, path in (("local file: zip CRCs", local), ("hub file: sha256", hub)):
            check = functools.partial(
                verify_integrity, path, IntegrityRecord(folder / f"{path.parent.name}.json")
            )
            rows.append((f"{name}, first check", seconds(check)))
            rows.append((f"{name}, remembered", seconds(check)))
    print(f"{size / 1e9:.2f} GB checkpoint, torch {torch.__version__}, warm OS file cache\n")
    baseline = rows[0][1]
    print(f"{'step':<36}{'seconds':>10}{'GB/s':>8}{'vs baseline':>13}")
    for name, took in rows:
        print(f"{name:<36}{took:>10.4f}{size / 1e9 / took:>8.1f}{took / baseline:>12.1f}x")


if __name__ == "__main__":
    main()
