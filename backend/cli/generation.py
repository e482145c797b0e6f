"""The commands that turn images into results: generate, batch and prepare."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..fleet.command_line import add_batch_arguments, run_batch_command
from .parsing import (
    EXIT_CODES_HELP,
    ArgumentParser,
    add_parameter_arguments,
    add_rembg_arguments,
    params_from_args,
    settings_from_args,
)

if TYPE_CHECKING:
    from tqdm import tqdm

    from ..pipeline import GenerationResult, Progress


def add_generate(commands: argparse._SubParsersAction, parents: list[ArgumentParser]) -> None:
    parser = commands.add_parser(
        "generate",
        parents=parents,
        help="turn an image into part meshes (parts.glb, parts.npz, preview.png, result.json)",
        description="Generate the part meshes of the object in IMAGE into the folder DIR.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("image", type=Path, metavar="IMAGE", help="photo or render of one object")
    parser.add_argument(
        "-o", "--output", type=Path, required=True, metavar="DIR", help="job folder to write"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    add_parameter_arguments(parser)
    parser.set_defaults(handler=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    from ..pipeline import PartPackerPipeline

    params = params_from_args(args)
    pipeline = PartPackerPipeline(settings_from_args(args))
    with StageBars() as bars:
        result = pipeline.generate(args.image, args.output, params, on_progress=bars)
    if args.json:
        print(json.dumps(result.to_dict(), indent=1))
    else:
        print_summary(result)
    return 0


class StageBars:
    """One tqdm bar per pipeline stage, on stderr when it is a terminal."""

    def __init__(self) -> None:
        self.stage: str | None = None
        self.bar: tqdm | None = None

    def __enter__(self) -> StageBars:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        self.close(finished=exc_type is None)

    def __call__(self, progress: Progress) -> None:
        self.show(progress.stage, progress.step, progress.total)

    def show(self, stage: str, step: int, total: int) -> None:
        from tqdm import tqdm

        if stage != self.stage or self.bar is None:
            self.close(finished=True)  # a stage has ended when the next one begins
            self.stage = stage
            self.bar = tqdm(
                total=total,
                desc=f"{stage:<11}",
                unit="step",
                file=sys.stderr,
                disable=None,
            )
        self.bar.total = total
        self.bar.update(step - self.bar.n)

    def close(self, finished: bool) -> None:
        if self.bar is None:
            return
        if finished and self.bar.total:
            self.bar.update(self.bar.total - self.bar.n)
        self.bar.close()
        self.bar = None


def print_summary(result: GenerationResult) -> None:
    seconds = sum(result.timings.values())
    print(f"{len(result.parts)} parts from seed {result.seed} in {seconds:.1f} s")
    for part in result.parts:
        print(
            f"  {part['name']}  volume {part['volume']}  {part['faces']:>9,} faces"
            f"  {part['vertices']:>9,} vertices"
        )
    files = ", ".join(path.name for path in (result.glb, result.npz, result.preview))
    print(f"written to {result.output_dir}: {files}, {result.result_json.name}")


def add_batch(commands: argparse._SubParsersAction, parents: list[ArgumentParser]) -> None:
    parser = commands.add_parser(
        "batch",
        parents=parents,
        help="every image of a folder, one job folder each, on this machine or a fleet",
        description="Generate the parts of every image in FOLDER into DIR/<image name>/, and "
        "a summary of every image's result or error into DIR/summary.json. Failed images are "
        "tried once more; images done by an earlier run are skipped. With --fleet, as many "
        "images at once as the fleet has replicas. Exit code 0 when every image is done, 1 when "
        "any failed.",
    )
    add_batch_arguments(parser)
    add_parameter_arguments(parser)
    parser.set_defaults(handler=run_batch)


def run_batch(args: argparse.Namespace) -> int:
    return run_batch_command(args, settings_from_args(args), params_from_args(args))


def add_prepare(commands: argparse._SubParsersAction, parents: list[ArgumentParser]) -> None:
    parser = commands.add_parser(
        "prepare",
        parents=parents,
        help="write the segmentation preview only (no models needed)",
        description="Cut the object out of IMAGE and recentre it as the model will see it: "
        "a 518x518 RGBA PNG. Images with transparency keep their alpha; others go through rembg.",
    )
    parser.add_argument("image", type=Path, metavar="IMAGE", help="photo or render of one object")
    parser.add_argument(
        "-o", "--output", type=Path, required=True, metavar="FILE", help="PNG to write"
    )
    add_rembg_arguments(parser.add_argument_group("background removal"))
    parser.set_defaults(handler=run_prepare)


def run_prepare(args: argparse.Namespace) -> int:
    from ..image import BackgroundRemover, ImagePreparer

    preparer = ImagePreparer(BackgroundRemover(args.rembg_model, args.rembg_model_path))
    prepared = preparer.prepare_preview(args.image, args.output)
    source = "its own alpha kept" if prepared.had_alpha else "background removed with rembg"
    print(f"wrote {args.output} ({source})")
    return 0
