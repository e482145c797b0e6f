"""The Ray Serve deployment of the pipeline: each replica holds one PartPackerPipeline, with the
models loaded once when the replica starts, and runs one job at a time (max_ongoing_requests=1,
so Serve queues the rest and routes each job to a free replica).

A job runs in the replica's one job thread while the replica's event loop streams its events.
Serve turns a cancelled request into asyncio.CancelledError inside `generate`; the pipeline sees
that through its should_cancel check and stops within one sampler step or decode chunk, and the
request ends only after it has stopped, so the next job never shares the GPU with it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import threading
import traceback
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import ray
from ray import serve

from .. import __version__
from ..errors import PartPackerError, describe_bug
from ..job_folder import JOB_FILES
from ..pipeline import PartPackerPipeline, PipelineSettings
from . import events
from .events import Event, JobRequest, ReplicaInfo

log = logging.getLogger(__name__)

BUG_HINT = "this is a bug in the replica; its log on that machine has the traceback"


class PipelineReplica:
    """One replica: the models of one GPU (or, without GPUs, of one CPU process, for tests)."""

    def __init__(self, settings: PipelineSettings) -> None:
        self.pipeline = PartPackerPipeline(settings)
        self.pipeline.load()
        self.jobs = ThreadPoolExecutor(max_workers=1, thread_name_prefix="partpacker-job")
        self.info = ReplicaInfo(
            replica_id=serve.get_replica_context().replica_id.unique_id,
            node=ray.util.get_node_ip_address(),
            pid=os.getpid(),
            device_name=str(self.pipeline.device_report()["device_name"]),
            backend_version=__version__,
        )
        log.info("replica %s ready on %s", self.info.replica_id, self.info.device_name)

    async def generate(self, request: JobRequest) -> AsyncIterator[Event]:
        """The job's events (backend/fleet/events.py), as they happen."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        stop = threading.Event()

        def emit(event: Event | None) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

        job = loop.run_in_executor(self.jobs, run_job, self.pipeline, request, emit, stop.is_set)
        yield events.started(self.info)
        try:
            while (event := await queue.get()) is not None:
                yield event
        finally:  # the request ended: finished, cancelled, or its caller went away
            stop.set()
            await job


def run_job(
    pipeline: PartPackerPipeline,
    request: JobRequest,
    emit: Callable[[Event | None], None],
    should_cancel: Callable[[], bool],
) -> None:
    """Generate in a folder of the replica's own, send the folder's files, then remove it."""
    try:
        with tempfile.TemporaryDirectory(prefix="partpacker-job-") as folder:
            image = Path(folder) / events.safe_file_name(request.image_name)
            image.write_bytes(request.image_bytes)
            result = pipeline.generate(
                image,
                Path(folder) / "job",
                request.params,
                on_progress=lambda update: emit(events.progress(update)),
                should_cancel=should_cancel,
            )
            for name in sorted(JOB_FILES):
                emit(events.file(name, (result.output_dir / name).read_bytes()))
            emit(events.result(result.seed, result.timings, result.parts))
    except PartPackerError as error:
        emit(events.error(error))
    except Exception as error:  # a bug in one job must not end the replica
        log.error("internal error in a job:\n%s", traceback.format_exc())
        emit(events.error(describe_bug(error, BUG_HINT)))
    finally:
        emit(None)
