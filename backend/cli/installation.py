"""The commands that set up and check an installation: download and doctor."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .parsing import ArgumentParser, add_hub_arguments, settings_from_args

if TYPE_CHECKING:
    from tqdm import tqdm


def add_download(commands: argparse._SubParsersAction, parents: list[ArgumentParser]) -> None:
    parser = commands.add_parser(
        "download",
        parents=parents,
        help="download the model weights from the Hugging Face hub",
        description="Download flow.pt and vae.pt (nvidia/PartPacker) and the DINOv2 weights "
        "(facebook/dinov2-giant) into the Hugging Face cache, or into one folder.",
    )
    add_hub_arguments(parser)
    parser.add_argument(
        "--local-dir",
        type=Path,
        metavar="DIR",
        help="put the three files in this folder (use it later as --weights-dir)",
    )
    parser.set_defaults(handler=run_download)


def run_download(args: argparse.Namespace) -> int:
    from ..weights import download_weights

    with DownloadProgress() as progress:
        files = download_weights(
            cache_dir=args.cache_dir,
            revision=args.revision,
            local_dir=args.local_dir,
            progress=progress,
        )
    for path in (files.flow, files.vae, files.dinov2):
        print(path)
    if args.local_dir is not None:
        print(f"use them with --weights-dir {args.local_dir}")
    return 0


class DownloadProgress:
    """Byte progress over all files: a tqdm bar on a terminal; else, for programs reading the
    output line by line, `{"file", "downloaded", "total"}` JSON lines at most twice a second."""

    LINE_INTERVAL = 0.5

    def __init__(self) -> None:
        self.interactive = sys.stderr.isatty()
        self.bar: tqdm | None = None
        self.last_line = -self.LINE_INTERVAL

    def __enter__(self) -> DownloadProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def __call__(self, downloaded: int, total: int, name: str) -> None:
        if self.interactive:
            self.draw(downloaded, total, name)
            return
        now = time.monotonic()
        if downloaded < total and now - self.last_line < self.LINE_INTERVAL:
            return
        self.last_line = now
        line = json.dumps({"file": name, "downloaded": downloaded, "total": total})
        print(line, file=sys.stderr, flush=True)

    def draw(self, downloaded: int, total: int, name: str) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, unit="B", unit_scale=True, file=sys.stderr)
        self.bar.set_description(name, refresh=False)
        self.bar.total = total
        self.bar.update(downloaded - self.bar.n)


def add_doctor(commands: argparse._SubParsersAction, parents: list[ArgumentParser]) -> None:
    parser = commands.add_parser(
        "doctor",
        parents=parents,
        help="check the installation, the device and the weights",
        description="Check what generation needs: libraries, device, weight files (their keys "
        "and shapes, read without loading them). Exits 0 only when generation can run.",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run_doctor)


def run_doctor(args: argparse.Namespace) -> int:
    from ..doctor import examine, format_report

    report = examine(settings_from_args(args))
    print(json.dumps(report.to_dict(), indent=1) if args.json else format_report(report))
    return report.exit_code
