"""The commands that keep models loaded and answer requests: serve (the worker) and web."""

from __future__ import annotations

import argparse
import dataclasses

from ..fleet.command_line import add_fleet_arguments, check_fleet_arguments, fleet_runner
from .parsing import ArgumentParser, settings_from_args


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
    from ..serve import serve

    return serve(lambda: settings_from_args(args))


def add_web(commands: argparse._SubParsersAction, parents: list[ArgumentParser]) -> None:
    from ..server.options import add_server_arguments

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
    from ..server.options import options_from_args, require_server_packages

    options = options_from_args(args)  # a refused address stops here, before anything loads
    check_fleet_arguments(args, "replicas", "max_replicas")
    require_server_packages()
    from ..pipeline import PartPackerPipeline
    from ..server.launch import serve

    if args.fleet is not None:
        runner = fleet_runner(args, settings_from_args(args))
        # as many generations at once as the fleet has replicas (or may have, autoscaled)
        return serve(lambda: runner, dataclasses.replace(options, concurrency=runner.capacity))

    def load_pipeline() -> PartPackerPipeline:
        pipeline = PartPackerPipeline(settings_from_args(args))
        pipeline.load()
        return pipeline

    return serve(load_pipeline, options)
