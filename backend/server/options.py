"""The web server's own options (address, token, limits, clean-up), their command-line flags, and
the rule that keeps a server reachable from other machines closed to strangers.

Imports nothing heavy: `python -m backend web --help` and a refused start answer at once.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from ..errors import BadInputError

TOKEN_ENV = "PARTPACKER_WEB_TOKEN"
LOOPBACK_NAMES = ("localhost",)
MEGABYTE = 1 << 20


@dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 7860
    """0 picks a free port (the start-up line says which)."""
    token: str | None = None
    """When set, every request needs it: `Authorization: Bearer T` (gradio_client:
    `Client(url, token=T)` sends it as `X-HF-Authorization: Bearer T`, also accepted), or the
    cookie the page's token form sets."""
    insecure: bool = False
    """Allow a non-loopback address without a token."""
    work_dir: Path | None = None
    """Uploads and job folders; None: a new temporary folder, removed when the server stops."""
    max_upload_mb: float = 20.0
    max_pixels: int = 40_000_000
    max_queue: int = 16
    """Jobs waiting at most; a request beyond gets `queue full` (HTTP 503) at once."""
    concurrency: int = 1
    """Generations at once: one per GPU. One pipeline is one GPU, so `web` keeps 1; a fleet's
    runner, with a replica per GPU, sets its replica count."""
    keep_minutes: float = 60.0
    """Uploads and results older than this are removed."""
    disk_budget_mb: float = 10_000.0
    """Above this, the oldest uploads and results are removed first, whatever their age."""
    grid_res_cap: int | None = None
    """Decode at most at this grid (a preview server, or a test on the CPU); requests for more
    are decoded at the cap and told so. None: as asked (the Space's 256-512)."""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise BadInputError(f"--port must be between 0 and 65535, got {self.port}")
        if self.token is not None and not self.token.strip():
            raise BadInputError("--token is empty", "give a token, or leave --token out")
        for name in ("max_upload_mb", "max_pixels", "max_queue", "concurrency"):
            if getattr(self, name) <= 0:
                raise BadInputError(f"--{name.replace('_', '-')} must be positive")
        if self.keep_minutes <= 0 or self.disk_budget_mb <= 0:
            raise BadInputError("--keep-minutes and --disk-budget-mb must be positive")
        if self.grid_res_cap is not None and not 16 <= self.grid_res_cap <= 512:
            raise BadInputError(
                f"--grid-res-cap must be between 16 and 512, got {self.grid_res_cap}"
            )
        self.require_closed_to_strangers()

    def require_closed_to_strangers(self) -> None:
        if is_loopback(self.host) or self.token or self.insecure:
            return
        raise BadInputError(
            f"refusing to listen on {self.host} without a token: anyone who can reach this "
            "machine could run jobs on its GPU and download the results",
            f"pass --token T (or set ${TOKEN_ENV}); clients then send it. "
            "--insecure starts it open anyway",
        )

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MEGABYTE)

    @property
    def disk_budget_bytes(self) -> int:
        return int(self.disk_budget_mb * MEGABYTE)

    @property
    def keep_seconds(self) -> float:
        return self.keep_minutes * 60


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost: it may resolve to anything


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = ServerOptions()
    group = parser.add_argument_group("server")
    group.add_argument(
        "--host",
        default=defaults.host,
        help="address to listen on (default: %(default)s, this machine only)",
    )
    group.add_argument(
        "--port",
        type=int,
        default=defaults.port,
        help="port (default: %(default)s; 0 picks a free one)",
    )
    group.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV) or None,
        help=f"require this token on every request and on the page (default: ${TOKEN_ENV}; "
        "prefer the variable: a command line is visible to other users of the machine)",
    )
    group.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback --host without a token (anyone who reaches it can use it)",
    )
    group.add_argument(
        "--work-dir",
        type=Path,
        metavar="DIR",
        help="uploads and job folders (default: a temporary folder, removed at exit)",
    )
    group.add_argument(
        "--max-upload-mb",
        type=float,
        default=defaults.max_upload_mb,
        metavar="MB",
        help="largest upload (default: %(default)s)",
    )
    group.add_argument(
        "--max-pixels",
        type=int,
        default=defaults.max_pixels,
        metavar="N",
        help="largest image, in pixels (default: %(default)s)",
    )
    group.add_argument(
        "--max-queue",
        type=int,
        default=defaults.max_queue,
        metavar="N",
        help="jobs waiting at most (default: %(default)s)",
    )
    group.add_argument(
        "--keep-minutes",
        type=float,
        default=defaults.keep_minutes,
        metavar="MIN",
        help="remove uploads and results older than this (default: %(default)s)",
    )
    group.add_argument(
        "--disk-budget-mb",
        type=float,
        default=defaults.disk_budget_mb,
        metavar="MB",
        help="remove the oldest uploads and results beyond this (default: %(default)s)",
    )
    group.add_argument(
        "--grid-res-cap",
        type=int,
        metavar="N",
        help="decode at most at grid N whatever is asked (previews on a small machine, tests); "
        "clients are told. Default: no cap",
    )


def options_from_args(args: argparse.Namespace) -> ServerOptions:
    return ServerOptions(
        host=args.host,
        port=args.port,
        token=args.token,
        insecure=args.insecure,
        work_dir=args.work_dir,
        max_upload_mb=args.max_upload_mb,
        max_pixels=args.max_pixels,
        max_queue=args.max_queue,
        keep_minutes=args.keep_minutes,
        disk_budget_mb=args.disk_budget_mb,
        grid_res_cap=args.grid_res_cap,
    )


def require_server_packages() -> None:
    missing = [name for name in ("gradio", "uvicorn", "fastapi") if find_spec(name) is None]
    if missing:
        raise BadInputError(
            f"the web server needs {', '.join(missing)}, which are not installed",
            "install the `server` extra: pip install 'partpacker-backend[server]' "
            "(in a checkout: pip install -e '.[server]')",
        )
