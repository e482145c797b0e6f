"""The command line's shared pieces: its parser class, the exit codes, and the options that
several commands take (model and device settings, hub, background removal, parameters)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from ..errors import (
    BadInputError,
    Cancelled,
    DeviceOutOfMemoryError,
    OutputError,
    SetupError,
    WeightsError,
)
from ..params import PARAM_RANGES, GenerationParams, ParamRange, plain_number

if TYPE_CHECKING:
    from ..pipeline import PipelineSettings

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
        help="keep each network in host memory except while it runs: the GPU holds one "
        "network's weights at a time instead of all three's, for some seconds of transfers "
        "per job",
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
        default="exact",
        metavar="NAME",
        help="exact (default: the official coarse-to-fine decoder's grid, no point queried "
        "twice), hierarchical (the official decoder, query for query), fast (a narrower band at "
        "the finest level, fewer queries: may differ from the official mesh) or dense (every "
        "grid point)",
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
    from ..pipeline import PipelineSettings

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
