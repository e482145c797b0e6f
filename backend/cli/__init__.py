"""`python -m backend COMMAND`: generate, batch, prepare, download, doctor, serve and web.

One module per group of commands: generation (generate, batch, prepare), installation
(download, doctor) and services (serve, web); parsing holds what they share. Torch and the
pipeline are imported inside the commands, so `--help` and argument errors answer at once.
Errors people can fix print one line and a hint (no traceback unless --verbose) and exit with
their code from errors.py.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence

from .. import __version__
from ..errors import Cancelled, PartPackerError, describe_bug
from .generation import add_batch, add_generate, add_prepare
from .installation import add_doctor, add_download
from .parsing import (
    EXIT_CODES_HELP,
    PROG,
    ArgumentParser,
    params_from_args,
    settings_arguments,
    settings_from_args,
    verbosity_arguments,
)
from .services import add_serve, add_web

__all__ = ["build_parser", "main", "params_from_args", "settings_from_args"]


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
