"""One real Ray cluster for the whole session (`--fleet local`: started in this process), with
the pipeline's Serve application on two CPU replicas of the tiny weights. Starting it takes
about half a minute on the 2-core build machine, so every fleet test shares it. A test that
kills replicas leaves Serve starting their successors; the `runner` fixture waits for them.
Ray is imported only by the fixtures, so that the local batch tests never load it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from backend.pipeline import PipelineSettings

if TYPE_CHECKING:
    from backend.fleet.cluster import Fleet
    from backend.fleet.runner import FleetRunner

REPLICAS = 2
LOCAL_CPUS = 4  # the two replicas, one more for a test's own deployment, one spare
READY_TIMEOUT_S = 180.0


@pytest.fixture(scope="session")
def fleet(tiny_settings: PipelineSettings) -> Iterator[Fleet]:
    import ray
    from ray import serve

    from backend.fleet.cluster import FleetOptions, open_fleet

    options = FleetOptions("local", replicas=REPLICAS, local_cpus=LOCAL_CPUS)
    yield open_fleet(tiny_settings, options)
    serve.shutdown()
    ray.shutdown()


@pytest.fixture
def runner(fleet: Fleet, tiny_settings: PipelineSettings) -> FleetRunner:
    """A FleetRunner on the session's fleet, once both of its replicas are up."""
    from backend.fleet.runner import FleetRunner

    deadline = time.monotonic() + READY_TIMEOUT_S
    while live_replicas() != REPLICAS:
        assert time.monotonic() < deadline, f"Serve did not bring back {REPLICAS} replicas"
        time.sleep(0.5)
    return FleetRunner(fleet, tiny_settings)


def live_replicas() -> int:
    """Replicas both alive as processes and running for Serve. Serve alone still counts a
    killed replica as running until its controller notices; Ray's actor names go at once."""
    import ray

    from backend.fleet.cluster import APP_NAME, running_replicas

    actors = ray.util.list_named_actors(all_namespaces=True)
    alive = sum(f"::{APP_NAME}#" in actor["name"] for actor in actors)
    return min(alive, running_replicas(APP_NAME) or 0)
