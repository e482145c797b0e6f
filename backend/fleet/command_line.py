"""The command line's fleet options (`--fleet` and the replica counts, for `web` and `batch`)
and the `batch` command's run. Ray is imported only once `--fleet` is given."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BadInputError

if TYPE_CHECKING:
    from ..params import GenerationParams
    from ..pipeline import PipelineSettings
    from .batch import Batch, ImageResult, Runner
    from .runner import FleetRunner

FLEET_HELP = (
    "run every job on a Ray Serve fleet: `local` starts a one-machine cluster in this process; "
    "HOST:6379 joins the cluster `ray start --head` began there (`auto`: on this machine)"
)


def add_fleet_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("fleet (Ray Serve, the `fleet` extra; backend/FLEET.md)")
    group.add_argument("--fleet", metavar="ADDRESS", help=FLEET_HELP)
    group.add_argument(
        "--replicas",
        type=replica_count,
        metavar="N|auto",
        help="pipeline replicas, one per GPU: a number, or auto (default: scale with the queue "
        "between 1 and --max-replicas)",
    )
    group.add_argument(
        "--max-replicas",
        type=replica_count,
        metavar="N",
        help="the most replicas auto may start (default: the GPUs in the cluster at start)",
    )


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, metavar="FOLDER", help="folder of images")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="DIR",
        help="one job folder per image in DIR, and DIR/summary.json",
    )
    parser.add_argument(
        "--jobs",
        type=replica_count,
        metavar="N",
        help="images at once (with --fleet; default: the fleet's replicas)",
    )
    add_fleet_arguments(parser)


def replica_count(text: str) -> int | None:
    if text == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is less than 1")
    return value


def fleet_runner(args: argparse.Namespace, settings: PipelineSettings) -> FleetRunner:
    try:
        from .cluster import FleetOptions, open_fleet
        from .runner import FleetRunner
    except ImportError as error:
        raise BadInputError(
            f"--fleet needs Ray Serve, which is not installed here ({error})",
            "install the backend with its `fleet` extra: pip install '.[fleet]'",
        ) from error
    options = FleetOptions(args.fleet, args.replicas, args.max_replicas)
    return FleetRunner(open_fleet(settings, options), settings)


def check_fleet_arguments(args: argparse.Namespace, *names: str) -> None:
    given = [name for name in names if getattr(args, name) is not None]
    if args.fleet is None and given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        verb = "works" if len(given) == 1 else "work"
        raise BadInputError(f"{flags} only {verb} with --fleet", "add --fleet local or ADDRESS")


def run_batch_command(
    args: argparse.Namespace, settings: PipelineSettings, params: GenerationParams
) -> int:
    """Exit code 0 when every image is done, 1 when any failed (summary.json says why)."""
    from .batch import find_images, run_batch

    check_fleet_arguments(args, "replicas", "max_replicas", "jobs")
    images = find_images(args.folder)  # before a fleet starts: a wrong folder fails at once
    runner: Runner
    if args.fleet is None:
        from ..pipeline import PartPackerPipeline

        runner, jobs = PartPackerPipeline(settings), 1
    else:
        runner = fleet_runner(args, settings)
        jobs = args.jobs or runner.capacity
    with ImageBar(len(images)) as bar:
        batch = run_batch(images, args.output, runner, params, jobs, on_result=bar)
    print_batch(batch)
    return 1 if batch.summary()["failed"] else 0


class ImageBar:
    """A tqdm bar of the images done, on stderr when it is a terminal."""

    def __init__(self, total: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="image", file=sys.stderr, disable=None)
        self.failed = 0

    def __enter__(self) -> ImageBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.bar.close()

    def __call__(self, result: ImageResult) -> None:
        self.failed += result.status == "failed"
        self.bar.set_postfix(failed=self.failed, refresh=False)
        self.bar.update()


def print_batch(batch: Batch) -> None:
    summary = batch.summary()
    print(
        f"{summary['done']} done, {summary['skipped']} done before and skipped, "
        f"{summary['failed']} failed; summary in {batch.output / 'summary.json'}"
    )
    for result in batch.results.values():
        if result.error is not None:
            print(f"  {result.image}: {result.error['message']}")
