"""The connection to a Ray cluster and the pipeline's Serve application on it.

`local` starts a one-machine cluster inside this process (it ends with the process); any other
address joins a running cluster (`ray start --head` on one machine, `ray start --address ...` on
the others). The application is deployed once per cluster: a later front end or batch on the
same cluster uses the running one as it is, warm models included.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from typing import Any, cast

import ray
from ray import serve
from ray.serve import Application
from ray.serve.handle import DeploymentHandle
from ray.serve.schema import ReplicaState

from ..errors import BadInputError, PartPackerError
from ..pipeline import PipelineSettings
from .deployment import PipelineReplica
from .events import ERROR_CLASSES

log = logging.getLogger(__name__)

LOCAL = "local"
CONNECT_TIMEOUT_S = 5.0
APP_NAME = "partpacker"
DEPLOYMENT_NAME = "PipelineReplica"
ERROR_CLASSES_BY_NAME = {error.__name__: error for error in ERROR_CLASSES.values()}
JOB_GRACE_S = 300.0
"""How long a replica being stopped (scaling down, redeploying) may finish its running job."""


@dataclass(frozen=True)
class FleetOptions:
    address: str = LOCAL
    """`local`, or a running cluster's address (HOST:6379; `auto`: the one on this machine)."""
    replicas: int | None = None
    """A fixed replica count; None scales with the queue between 1 and max_replicas."""
    max_replicas: int | None = None
    """The autoscaler's ceiling; None: one per GPU in the cluster when the fleet starts (per
    CPU for CPU replicas)."""
    app_name: str = APP_NAME
    local_cpus: int | None = None
    """Logical CPUs of a `local` cluster (None: this machine's)."""

    def __post_init__(self) -> None:
        for name in ("replicas", "max_replicas"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise BadInputError(f"{name} must be at least 1, got {value}")


@dataclass(frozen=True)
class Fleet:
    handle: DeploymentHandle
    capacity: int
    """Jobs worth sending at once: the replicas there are or may be."""


def require_reachable(address: str) -> None:
    """Fail at once on an address where no cluster answers (Ray itself would retry for
    minutes): HOST:PORT, or ray://HOST:PORT for Ray's client."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise BadInputError(
            f"{address!r} is not a cluster address",
            "give local, auto (the cluster `ray start` began on this machine) or HOST:PORT",
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise BadInputError(
            f"no Ray cluster answers at {address}: {error}",
            "start it with `ray start --head --port 6379` on the head machine and give its "
            "address as HOST:6379, or use `--fleet local`",
        ) from error


def open_fleet(settings: PipelineSettings, options: FleetOptions) -> Fleet:
    connect(options.address, options.local_cpus)
    return start_fleet(settings, options)


def connect(address: str, local_cpus: int | None = None) -> None:
    """Join the cluster at `address` (or start a `local` one) and start Serve on it, without
    Serve's HTTP proxy: jobs reach the replicas only through this process's handle."""
    if ray.is_initialized():
        raise RuntimeError("this process has joined a Ray cluster already")
    if address not in (LOCAL, "auto"):
        require_reachable(address)
    try:
        if address == LOCAL:
            ray.init(address=LOCAL, num_cpus=local_cpus, include_dashboard=False)
        else:
            ray.init(address=address)
    except (ConnectionError, RuntimeError) as error:
        raise BadInputError(
            f"cannot join the Ray cluster at {address}: {error}",
            "start it with `ray start --head` on the head machine and give its address "
            "(HOST:6379), or use `--fleet local`",
        ) from error
    serve.start(proxy_location="Disabled")


def start_fleet(settings: PipelineSettings, options: FleetOptions) -> Fleet:
    """The running application of `options.app_name`, or a new deployment of it."""
    running = running_replicas(options.app_name)
    if running is not None:
        log.warning(
            "using the PartPacker deployment %r already running on this cluster (%d replicas, "
            "its own settings); `serve shutdown` first to deploy new ones",
            options.app_name,
            running,
        )
        return Fleet(serve.get_app_handle(options.app_name), max(running, 1))
    resources = replica_resources(settings)
    scaling = replica_scaling(options, resources)
    log.info("deploying %r: %s per replica, %s", options.app_name, resources, scaling)
    application = replica_deployment(resources, scaling).bind(settings)
    capacity = options.replicas or scaling["autoscaling_config"]["max_replicas"]
    return Fleet(deploy(application, options.app_name), capacity)


def deploy(application: Application, app_name: str) -> DeploymentHandle:
    """Serve's handle once every replica has started (loaded its models). Replicas that cannot
    start raise the error their pipeline raised (missing weights, say), and leave nothing."""
    try:
        return serve.run(application, name=app_name, route_prefix=None)
    except RuntimeError as error:
        failure = replica_failure(app_name)
        serve.delete(app_name)
        raise failure from error


def replica_failure(app_name: str) -> PartPackerError:
    """The error of a replica that did not start, from the last line of the traceback in
    Serve's status: `backend.errors.WeightsError: weights folder ... does not exist`."""
    deployment = serve.status().applications[app_name].deployments.get(DEPLOYMENT_NAME)
    last_line = deployment.message.strip().splitlines()[-1] if deployment else "unknown"
    name, _, message = last_line.partition(": ")
    error_class = ERROR_CLASSES_BY_NAME.get(name.rsplit(".", 1)[-1], PartPackerError)
    return error_class(
        f"the fleet's replicas could not start: {message or last_line}",
        "every replica's machine needs what its settings name (the weights at the same "
        "--weights-dir or in its own cache); tracebacks: /tmp/ray/session_latest/logs/serve/",
    )


def replica_deployment(resources: dict[str, float], scaling: dict[str, Any]) -> serve.Deployment:
    # cast: serve.deployment's overloads type a bare class's call as a decorator
    deployment = cast(serve.Deployment, serve.deployment(PipelineReplica))
    return deployment.options(
        name=DEPLOYMENT_NAME,
        ray_actor_options=resources,
        max_ongoing_requests=1,
        graceful_shutdown_timeout_s=JOB_GRACE_S,
        **scaling,
    )


def replica_resources(settings: PipelineSettings) -> dict[str, float]:
    """One GPU per replica; CPU replicas (one core each) where the cluster has no GPU or the
    settings ask for the CPU."""
    if settings.device != "cpu" and ray.cluster_resources().get("GPU", 0) >= 1:
        return {"num_gpus": 1}
    if settings.device != "cpu":
        log.warning("the cluster has no GPU: CPU replicas, for testing only")
    return {"num_cpus": 1}


def replica_scaling(options: FleetOptions, resources: dict[str, float]) -> dict[str, Any]:
    if options.replicas is not None:
        return {"num_replicas": options.replicas}
    units = ray.cluster_resources().get("GPU" if "num_gpus" in resources else "CPU", 1)
    ceiling = options.max_replicas or max(int(units), 1)
    return {
        "autoscaling_config": {
            "min_replicas": 1,
            "max_replicas": ceiling,
            "target_ongoing_requests": 1,  # one job per replica: every queued job asks for one
        }
    }


def running_replicas(app_name: str) -> int | None:
    """The running replicas of a RUNNING application called `app_name`; None when there is none."""
    application = serve.status().applications.get(app_name)
    if application is None or application.status != "RUNNING":
        return None
    deployment = application.deployments.get(DEPLOYMENT_NAME)
    return deployment.replica_states.get(ReplicaState.RUNNING, 0) if deployment else 0
