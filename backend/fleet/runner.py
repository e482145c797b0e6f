"""FleetRunner: PartPackerPipeline's two job methods, with each generation run on a replica of
the fleet. It is what the web front end and `batch` are given instead of a pipeline.

- Progress streams from the replica and reaches `on_progress` in this process, stage by stage.
- `should_cancel` is polled here; the first True cancels the Serve request, which stops the job
  on the replica at its next check.
- The job folder's files come back as bytes and are written into `output_dir` only once the job
  has succeeded, so a failed or lost job leaves no half folder.
- A replica lost mid-job (its process or machine gone; Serve's health check ends a hung one) is
  retried once, with the same seed, on another replica; a second loss is a ReplicaLost error.
  Errors of the job itself (bad image, out of memory, missing weights) are not retried.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

from ray.exceptions import RayActorError, TaskCancelledError
from ray.serve.exceptions import ReplicaUnavailableError
from ray.serve.handle import DeploymentResponseGenerator

from ..errors import CancelCheck, Cancelled, OutputError, PartPackerError
from ..export import write_json
from ..files import write_atomically
from ..image import BackgroundRemover, ImagePreparer, PreparedImage, load_image
from ..params import GenerationParams
from ..pipeline import GenerationResult, PipelineSettings, ProgressCallback, make_output_dir
from . import events
from .cluster import Fleet
from .events import Event, JobRequest, ReplicaInfo

log = logging.getLogger(__name__)

CANCEL_POLL_S = 0.1
ATTEMPTS = 2
REPLICA_LOST = (RayActorError, ReplicaUnavailableError)
"""How Ray reports a replica whose process or machine went away during a request."""
REQUEST_CANCELLED = (TaskCancelledError, CancelledError)

ReplicaCallback = Callable[[ReplicaInfo], None]


class ReplicaLost(PartPackerError):
    """The replicas running a job went away, once more than is retried."""

    code = "replica_lost"


@dataclass
class FleetResult(GenerationResult):
    """The pipeline's result, and which replica made it at which attempt."""

    replica: ReplicaInfo | None = None
    attempts: int = 1


@dataclass
class Outcome:
    """What one attempt brought back."""

    replica: ReplicaInfo
    result: Event
    files: dict[str, bytes] = field(default_factory=dict)


class FleetRunner:
    """Runs prepare here and generate on the fleet behind `handle` (see the module's text)."""

    def __init__(self, fleet: Fleet, settings: PipelineSettings):
        self.handle = fleet.handle.options(stream=True, method_name="generate")
        self.capacity = fleet.capacity
        # Background removal alone is light: here it never waits behind the replicas' queue.
        self.preparer = ImagePreparer(
            BackgroundRemover(settings.rembg_model, settings.rembg_model_path)
        )

    def prepare(self, image: Path, preview: Path) -> PreparedImage:
        prepared = self.preparer.prepare(image)
        prepared.save_preview(preview)
        return prepared

    def generate(
        self,
        image: Path,
        output_dir: Path,
        params: GenerationParams | None = None,
        on_progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
        on_replica: ReplicaCallback | None = None,
    ) -> FleetResult:
        """`on_replica` hears which replica took the job, once per attempt."""
        image = Path(image)
        load_image(image)  # a file that is not an image fails here, before it takes a replica
        params = (params or GenerationParams()).with_resolved_seed()
        request = JobRequest(image.name, image.read_bytes(), params)
        hooks = (on_progress, should_cancel, on_replica)
        for attempt in range(1, ATTEMPTS):
            try:
                return deliver(self._attempt(request, *hooks), image, Path(output_dir), attempt)
            except ReplicaLost as lost:
                log.warning("%s; trying again on another replica", lost.message)
        # the last attempt: its loss is the caller's
        return deliver(self._attempt(request, *hooks), image, Path(output_dir), ATTEMPTS)

    def _attempt(
        self,
        request: JobRequest,
        on_progress: ProgressCallback | None,
        should_cancel: CancelCheck | None,
        on_replica: ReplicaCallback | None,
    ) -> Outcome:
        stream = cast(DeploymentResponseGenerator, self.handle.remote(request))
        watch = CancelWatch(stream, should_cancel)
        received = Received(on_progress, on_replica)
        ended = False
        try:
            for event in stream:
                received.take(event)
            ended = True
        except REQUEST_CANCELLED as error:
            raise Cancelled("generation cancelled") from error
        except REPLICA_LOST as error:
            if watch.fired:
                raise Cancelled("generation cancelled") from error
            raise ReplicaLost(
                f"the replica running the job ({describe(received.replica)}) went away",
                "the fleet may have lost a machine: `ray status` on the head lists the nodes",
            ) from error
        finally:
            watch.stop()
            if not ended:  # an error here (a callback's, say) must not leave the job running
                stream.cancel()
        return received.outcome()


class Received:
    """The events of one attempt as they arrive: progress passed on, files kept."""

    def __init__(self, on_progress: ProgressCallback | None, on_replica: ReplicaCallback | None):
        self.on_progress, self.on_replica = on_progress, on_replica
        self.replica: ReplicaInfo | None = None
        self.files: dict[str, bytes] = {}
        self.result: Event | None = None

    def take(self, event: Event) -> None:
        kind = event["kind"]
        if kind == "started":
            self.replica = ReplicaInfo.from_dict(event["replica"])
            if self.on_replica is not None:
                self.on_replica(self.replica)
        elif kind == "progress" and self.on_progress is not None:
            self.on_progress(events.to_progress(event))
        elif kind == "file":
            self.files[events.safe_file_name(event["name"])] = event["data"]
        elif kind == "result":
            self.result = event
        elif kind == "error":
            raise events.to_error(event)

    def outcome(self) -> Outcome:
        if self.replica is None or self.result is None:
            lost = describe(self.replica)
            raise ReplicaLost(f"the replica running the job ({lost}) ended it without a result")
        return Outcome(self.replica, self.result, self.files)


class CancelWatch:
    """Polls `should_cancel` while a request runs; the first True cancels the request."""

    def __init__(self, stream: DeploymentResponseGenerator, should_cancel: CancelCheck | None):
        self.stream, self.should_cancel = stream, should_cancel
        self.fired = False
        self._done = threading.Event()
        if should_cancel is not None:
            threading.Thread(target=self._watch, name="partpacker-cancel", daemon=True).start()

    def _watch(self) -> None:
        assert self.should_cancel is not None
        while not self._done.wait(CANCEL_POLL_S):
            if self.should_cancel():
                self.fired = True
                self.stream.cancel()
                return

    def stop(self) -> None:
        self._done.set()


def describe(replica: ReplicaInfo | None) -> str:
    if replica is None:
        return "not identified yet"
    return f"{replica.replica_id}, pid {replica.pid} on {replica.node}"


def deliver(outcome: Outcome, image: Path, output_dir: Path, attempts: int) -> FleetResult:
    """Write the job's files into `output_dir`; result.json names the image as given here and
    the replica that made it."""
    output_dir = make_output_dir(output_dir)
    record: dict[str, Any] = json.loads(outcome.files.pop("result.json"))
    try:
        for name, data in outcome.files.items():
            write_atomically(output_dir / name, functools.partial(Path.write_bytes, data=data))
    except OSError as error:
        raise OutputError(
            f"the job ran, but its files cannot be written into {output_dir}: "
            f"{error.strerror or error}",
            "choose an output folder that you can write to, with free disk space",
        ) from error
    record.update(image=str(image), replica=asdict(outcome.replica), attempts=attempts)
    write_json(record, output_dir / "result.json")
    result = outcome.result
    return FleetResult(
        output_dir=output_dir,
        glb=output_dir / "parts.glb",
        npz=output_dir / "parts.npz",
        preview=output_dir / "preview.png",
        result_json=output_dir / "result.json",
        seed=result["seed"],
        timings=result["timings"],
        parts=result["parts"],
        replica=outcome.replica,
        attempts=attempts,
    )
