"""FleetRunner: PartPackerPipeline's two job methods, with each generation run on a replica of
the fleet. It is what the web front end and `batch` are given instead of a pipeline.

- Progress streams from the replica and reaches `on_progress` stage by stage, in the thread that
  called `generate`, which also polls `should_cancel`: the first True cancels the Serve request,
  which stops the job on the replica at its next check.
- The job folder's files come back as bytes and are written into `output_dir` only once the job
  has succeeded, so a failed or lost job leaves no half folder.
- A replica lost mid-job (its process or machine gone, or silent for STALL_S: hung) is retried
  once, with the same seed, on another replica; a second loss is a ReplicaLost error.
  Errors of the job itself (bad image, out of memory, missing weights) are not retried.
"""

from __future__ import annotations

import functools
import json
import logging
import queue
import threading
import time
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
from ..files import open_image_file, write_atomically
from ..image import BackgroundRemover, ImagePreparer, PreparedImage, load_image
from ..job_folder import JobFolder, building
from ..params import GenerationParams
from ..pipeline import GenerationResult, PipelineSettings, ProgressCallback
from . import events
from .cluster import Fleet
from .events import Event, JobRequest, ReplicaInfo

log = logging.getLogger(__name__)

POLL_S = 0.1
"""How often a job's thread looks at the cancel while no event arrives."""
END_OF_STREAM = object()
STALL_S = 600.0
"""A replica that has started a job and sends nothing for this long is lost. The longest quiet
stretch of a healthy job is one decode level or one volume's meshing: seconds on a GPU."""
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

    def __init__(self, fleet: Fleet, settings: PipelineSettings, stall_s: float = STALL_S):
        self.handle = fleet.handle.options(stream=True, method_name="generate")
        self.capacity = fleet.capacity
        self.stall_s = stall_s
        # Background removal alone is light: here it never waits behind the replicas' queue.
        self.preparer = ImagePreparer(
            BackgroundRemover(settings.rembg_model, settings.rembg_model_path)
        )

    def prepare(self, image: Path, preview: Path) -> PreparedImage:
        return self.preparer.prepare_preview(image, preview)

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
        with open_image_file(image) as stream:
            request = JobRequest(image.name, stream.read(), params)
        hooks = (on_progress, should_cancel, on_replica)
        with building(Path(output_dir)) as folder:  # an output that cannot work: refused first
            for attempt in range(1, ATTEMPTS):
                try:
                    return deliver(self._attempt(request, *hooks), image, folder, attempt)
                except ReplicaLost as lost:
                    log.warning("%s; trying again on another replica", lost.message)
            # the last attempt: its loss is the caller's
            return deliver(self._attempt(request, *hooks), image, folder, ATTEMPTS)

    def _attempt(
        self,
        request: JobRequest,
        on_progress: ProgressCallback | None,
        should_cancel: CancelCheck | None,
        on_replica: ReplicaCallback | None,
    ) -> Outcome:
        """One try on one replica. A reader thread takes the stream's events; this thread runs
        the callbacks and polls the cancel, so that neither a hung replica (whose stream a
        cancel cannot end) nor a cancel waits on the stream."""
        stream = cast(DeploymentResponseGenerator, self.handle.remote(request))
        inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        threading.Thread(target=read_stream, args=(stream, inbox), daemon=True).start()
        received = Received(on_progress, on_replica)
        ended = False
        try:
            self._follow(inbox, received, should_cancel)
            ended = True
        finally:
            if not ended:  # cancelled, stalled, or a callback's error: stop the job there
                stream.cancel()
        return received.outcome()

    def _follow(
        self, inbox: queue.SimpleQueue[Any], received: Received, should_cancel: CancelCheck | None
    ) -> None:
        last_event: float | None = None  # None while the job waits for a free replica
        while True:
            if should_cancel is not None and should_cancel():
                raise Cancelled("generation cancelled")
            try:
                item = inbox.get(timeout=POLL_S)
            except queue.Empty:
                if last_event is not None and time.monotonic() - last_event > self.stall_s:
                    raise ReplicaLost(
                        f"the replica running the job ({describe(received.replica)}) sent "
                        f"nothing for {self.stall_s:g} s",
                        "its GPU or process may be stuck: `serve status` on the head shows "
                        "its health",
                    ) from None
                continue
            if item is END_OF_STREAM:
                return
            if isinstance(item, REQUEST_CANCELLED):
                raise Cancelled("generation cancelled") from item
            if isinstance(item, REPLICA_LOST):
                raise ReplicaLost(
                    f"the replica running the job ({describe(received.replica)}) went away",
                    "the fleet may have lost a machine: `ray status` on the head lists the nodes",
                ) from item
            if isinstance(item, BaseException):
                raise item
            last_event = time.monotonic()
            received.take(item)


def read_stream(stream: DeploymentResponseGenerator, inbox: queue.SimpleQueue[Any]) -> None:
    """Every event of `stream` into `inbox`, then END_OF_STREAM, or the error that ended it."""
    try:
        for event in stream:
            inbox.put(event)
        inbox.put(END_OF_STREAM)
    except BaseException as error:  # handed to the job's thread, which raises it
        inbox.put(error)


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


def describe(replica: ReplicaInfo | None) -> str:
    if replica is None:
        return "not identified yet"
    return f"{replica.replica_id}, pid {replica.pid} on {replica.node}"


def deliver(outcome: Outcome, image: Path, folder: JobFolder, attempts: int) -> FleetResult:
    """Write the job's files into `folder` (put in place when the caller's block ends);
    result.json names the image as given here and the replica that made it."""
    output_dir = folder.target
    record: dict[str, Any] = json.loads(outcome.files.pop("result.json"))
    record.update(image=str(image), replica=asdict(outcome.replica), attempts=attempts)
    try:
        for name, data in outcome.files.items():
            write_atomically(folder.file(name), functools.partial(Path.write_bytes, data=data))
        write_json(record, folder.file("result.json"))
    except OSError as error:
        raise OutputError(
            f"the job ran, but its files cannot be written into {output_dir}: "
            f"{error.strerror or error}",
            "choose an output folder that you can write to, with free disk space",
        ) from error
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
