"""`python -m backend COMMAND`: generate, batch, prepare, download, doctor, serve and web.

Torch and the pipeline are imported inside the commands, so `--help` and argument errors answer
at once. Errors people can fix print one line and a hint (no traceback unless --verbose) and exit
with their code from errors.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from . import __version__
from .errors import (
    BadInputError,
    Cancelled,
    DeviceOutOfMemoryError,
    OutputError,
    PartPackerError,
    SetupError,
    WeightsError,
    describe_bug,
)
from .fleet.command_line import (
    add_batch_arguments,
    add_fleet_arguments,
    check_fleet_arguments,
    fleet_runner,
    run_batch_command,
)
from .params import PARAM_RANGES, GenerationParams, ParamRange, plain_number

if TYPE_CHECKING:
    from tqdm import tqdm

    from .pipeline import GenerationResult, PipelineSettings, Progress

PROG = "python -m backend"
MODEL_CONFIG_ENV = "PARTPACKER_MODEL_CONFIG"
WEIGHTS_CACHE_ENV = "PARTPACKER_WEIGHTS_CACHE"
# Where the command line's default differs from the protocol's (PARAM_RANGES).
CLI_DEFAULT_NOTES = {"randomize_seed": "default: on, off when --seed is given"}

EXIT_CODES_HELP = f"""exit codes:
  0    success
  1    internal error (run with --verbose for the traceback)
  {BadInputError.exit_code}    bad input (image, parameter, command line)
  {WeightsError.exit_code}    model weights missing or broken
  {DeviceOutOfMemoryError.exit_code}    out of device memory (try a lower --grid-res)
  {OutputError.exit_code}    the output cannot be written
  {SetupError.exit_code}    this Python lacks the backend's packages (set up the backend)
  {Cancelled.exit_code}  cancelled (Ctrl-C)"""


class ArgumentParser(argparse.ArgumentParser):
    """Argument errors become BadInputError: one line, a hint, exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise BadInputError(message, f"see `{self.prog} --help`")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    verbosity = 0
    try:
        args = parser.parse_args(argv)
        verbosity = args.verbose + args.log_floor
        configure_logging(verbosity)
        return args.handler(args)
    except KeyboardInterrupt:
        return report_error(Cancelled("cancelled (Ctrl-C)"), verbosity)
    except PartPackerError as error:
        return report_error(error, verbosity)
    except Exception as error:  # the last line of defence: a bug gets one line, not a crash dump
        hint = "run again with --verbose for the traceback, and please report it"
        return report_error(describe_bug(error, hint), verbosity)


def report_error(error: PartPackerError, verbosity: int) -> int:
    if verbosity > 0 and error.exit_code == 1:
        traceback.print_exc(file=sys.stderr)
    print(f"error: {error.message}", file=sys.stderr)
    if error.hint:
        print(f"hint: {error.hint}", file=sys.stderr)
    return error.exit_code


def configure_logging(verbosity: int) -> None:
    levels = {0: logging.WARNING, 1: logging.INFO}
    logging.basicConfig(
        level=levels.get(verbosity, logging.DEBUG),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description="PartPacker: one image in, a 3D mesh already split into parts out.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log to stderr (-vv: debug)"
    )
    parser.set_defaults(log_floor=0)
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=ArgumentParser
    )
    common, settings = verbosity_arguments(), settings_arguments()
    add_generate(commands, [common, settings])
    add_batch(commands, [common, settings])
    add_prepare(commands, [common])
    add_download(commands, [common])
    add_doctor(commands, [common, settings])
    add_serve(commands, [common, settings])
    add_web(commands, [common, settings])
    return parser


def verbosity_arguments() -> ArgumentParser:
    parent = ArgumentParser(add_help=False)
    # SUPPRESS keeps a subcommand from resetting a -v given before the command name.
    parent.add_argument(
        "-v", "--verbose", action="count", default=argparse.SUPPRESS, help="log to stderr"
    )
    return parent


def settings_arguments() -> ArgumentParser:
    parent = ArgumentParser(add_help=False)
    group = parent.add_argument_group("model and device")
    group.add_argument(
        "--weights-dir",
        type=Path,
        metavar="DIR",
        help="folder with flow.pt, vae.pt and model.safetensors (default: the Hugging Face cache)",
    )
    add_hub_arguments(group)
    group.add_argument(
        "--device",
        default="auto",
        help="auto (CUDA, then Apple MPS, then CPU), cuda, mps or cpu (default: auto)",
    )
    group.add_argument(
        "--model-config",
        type=Path,
        metavar="FILE",
        default=os.environ.get(MODEL_CONFIG_ENV) or None,
        help=f"JSON of model sizes, for tiny test models (default: ${MODEL_CONFIG_ENV}, "
        "else the full-size models)",
    )
    add_rembg_arguments(group)
    group.add_argument(
        "--low-memory",
        action="store_true",
        help="keep each network in host memory except while it runs (a third of the GPU "
        "memory, some seconds of transfers per job)",
    )
    group.add_argument(
        "--weights-cache",
        type=Path,
        default=os.environ.get(WEIGHTS_CACHE_ENV) or None,
        metavar="DIR",
        help="keep converted copies of the checkpoints here: later starts map them straight to "
        f"the device (default: ${WEIGHTS_CACHE_ENV}, else no cache)",
    )
    group.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the DiT: faster sampling steps once compiled; the first job takes "
        "tens of seconds longer",
    )
    group.add_argument(
        "--decode-strategy",
        default="surface",
        metavar="NAME",
        help="surface (default: refines only near the surface, fewer queries) or hierarchical "
        "(the official coarse-to-fine decoder, query for query)",
    )
    return parent


def add_hub_arguments(group: argparse._ActionsContainer) -> None:
    group.add_argument(
        "--cache-dir",
        "--repo-cache",
        type=Path,
        metavar="DIR",
        help="Hugging Face cache folder (default: Hugging Face's own, $HF_HOME)",
    )
    group.add_argument("--revision", help="hub revision (branch, tag or commit) of the weights")


def add_rembg_arguments(group: argparse._ActionsContainer) -> None:
    group.add_argument(
        "--rembg-model",
        default="u2net",
        metavar="NAME",
        help="rembg background-removal model for images without alpha (default: u2net)",
    )
    group.add_argument(
        "--rembg-model-path",
        type=Path,
        metavar="FILE",
        help="a local ONNX file for the rembg model (no download)",
    )


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


def add_parameter_arguments(parser: ArgumentParser) -> None:
    group = parser.add_argument_group("generation parameters (the public demo's)")
    for name, spec in PARAM_RANGES.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(spec.default, bool):
            note = CLI_DEFAULT_NOTES.get(name, f"default: {'on' if spec.default else 'off'}")
            group.add_argument(
                flag,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=as_help(f"{spec.help} ({note})"),
            )
        else:
            group.add_argument(
                flag, type=number, default=None, metavar="N", help=parameter_help(spec)
            )


def parameter_help(spec: ParamRange) -> str:
    return as_help(f"{spec.help} (default {plain_number(spec.default)}, {spec.range_text()})")


def as_help(text: str) -> str:
    """argparse formats help texts with %: a literal one is written twice."""
    return text.replace("%", "%%")


def number(text: str) -> int | float:
    """A number as typed; ranges and whole-number checks are GenerationParams.from_dict's job."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def params_from_args(args: argparse.Namespace) -> GenerationParams:
    values = {name: getattr(args, name) for name in PARAM_RANGES}
    values = {name: value for name, value in values.items() if value is not None}
    values.setdefault("randomize_seed", "seed" not in values)
    try:
        return GenerationParams.from_dict(values)
    except BadInputError as error:
        if error.hint:
            raise
        raise BadInputError(error.message, f"see `{PROG} generate --help`") from error


def settings_from_args(args: argparse.Namespace) -> PipelineSettings:
    from .pipeline import PipelineSettings

    return PipelineSettings(
        weights_dir=args.weights_dir,
        cache_dir=args.cache_dir,
        revision=args.revision,
        device=args.device,
        model_config=args.model_config,
        rembg_model=args.rembg_model,
        rembg_model_path=args.rembg_model_path,
        low_memory=args.low_memory,
        weights_cache=args.weights_cache,
        decode_strategy=args.decode_strategy,
        compile_dit=args.compile,
    )


def run_generate(args: argparse.Namespace) -> int:
    from .pipeline import PartPackerPipeline

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
    from .image import BackgroundRemover, ImagePreparer

    preparer = ImagePreparer(BackgroundRemover(args.rembg_model, args.rembg_model_path))
    prepared = preparer.prepare_preview(args.image, args.output)
    source = "its own alpha kept" if prepared.had_alpha else "background removed with rembg"
    print(f"wrote {args.output} ({source})")
    return 0


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
    from .weights import download_weights

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
    from .doctor import examine, format_report

    report = examine(settings_from_args(args))
    print(json.dumps(report.to_dict(), indent=1) if args.json else format_report(report))
    return report.exit_code


def add_serve(commands: argparse._SubParsersAction, parents: list[ArgumentParser]) -> None:
    parser = commands.add_parser(
        "serve",
        parents=parents,
        help="run the persistent worker (JSON lines on stdin/stdout, see backend/PROTOCOL.md)",
        description="Keep the models loaded and answer requests, one JSON object per line: "
        "requests on stdin, events on stdout, logs on stderr. Protocol: backend/PROTOCOL.md.",
    )
    parser.set_defaults(handler=run_serve, log_floor=1)


def run_serve(args: argparse.Namespace) -> int:
    from .serve import serve

    return serve(lambda: settings_from_args(args))


def add_web(commands: argparse._SubParsersAction, parents: list[ArgumentParser]) -> None:
    from .server.options import add_server_arguments

    parser = commands.add_parser(
        "web",
        parents=parents,
        help="serve the public Space's API and a web page (needs the `server` extra)",
        description="Serve PartPacker over HTTP as the public nvidia/PartPacker Space does: its "
        "three API functions (process_image, get_random_seed, process_3d) for gradio_client and "
        "Blender, and a web page. Listens on this machine only unless --host says otherwise; "
        "another address needs --token. What it promises: backend/SERVER.md.",
    )
    add_server_arguments(parser)
    add_fleet_arguments(parser)
    parser.set_defaults(handler=run_web, log_floor=1)


def run_web(args: argparse.Namespace) -> int:
    from .server.options import options_from_args, require_server_packages

    options = options_from_args(args)  # a refused address stops here, before anything loads
    check_fleet_arguments(args, "replicas", "max_replicas")
    require_server_packages()
    from .pipeline import PartPackerPipeline
    from .server.launch import serve

    if args.fleet is not None:
        runner = fleet_runner(args, settings_from_args(args))
        # as many generations at once as the fleet has replicas (or may have, autoscaled)
        return serve(lambda: runner, dataclasses.replace(options, concurrency=runner.capacity))

    def load_pipeline() -> PartPackerPipeline:
        pipeline = PartPackerPipeline(settings_from_args(args))
        pipeline.load()
        return pipeline

    return serve(load_pipeline, options)
