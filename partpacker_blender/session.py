"""The add-on's runtime state: the backend, the task in flight, what the panel shows.

Jobs run in the backend; their results are imported on the main thread, by `tick()` (a
bpy.app.timers callback in the UI) or `wait()` (background scripts). A result only lands in
the scene it was asked for, and only if no other file was loaded in the meantime.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bpy

from . import notices, timers
from .child_process import finish_stopping
from .client import Backend, Job, JobError, JobOutcome
from .importer import ImportedParts, ImportOptions
from .job_folder import JobFolderError, import_job_folder
from .parts_file import PartsFileError
from .result_paths import stored_path

log = logging.getLogger(__name__)

PREVIEW_IMAGE_NAME = "PartPacker Segmentation"


@dataclass
class Task:
    """One request to the backend as the user sees it."""

    kind: str
    label: str
    scene_name: str
    file_generation: int
    job: Job | None = None
    imported: ImportedParts | None = None
    error: JobError | None = None

    @property
    def elapsed(self) -> float:
        return 0.0 if self.job is None else time.monotonic() - self.job.started


@dataclass(frozen=True)
class GenerateRequest:
    image: Path
    stem: str
    params: dict[str, Any]
    options: ImportOptions
    output_dir: Path
    scene_name: str


@dataclass
class Session:
    client: Backend
    task: Task | None = None
    last_error: JobError | None = None
    file_generation: int = 0

    def start_generate(self, request: GenerateRequest) -> Task:
        fields = {
            "image": str(request.image),
            "output_dir": str(request.output_dir),
            "params": request.params,
        }
        task = self._new_task("generate", request.stem, request.scene_name)
        return self._submit(
            task, fields, lambda outcome: self._on_generated(task, request, outcome)
        )

    def start_prepare(self, image: Path, preview: Path, scene_name: str) -> Task:
        task = self._new_task("prepare", image.stem, scene_name)
        fields = {"image": str(image), "output": str(preview)}
        return self._submit(task, fields, lambda outcome: self._on_prepared(task, outcome))

    def start_unload(self) -> Task:
        task = self._new_task("unload", "GPU memory", "")
        return self._submit(task, {}, lambda outcome: self._on_unloaded(task, outcome))

    def cancel(self) -> bool:
        return self.client.cancel()

    def tick(self) -> float | None:
        shown = (self.client.state, self.task)
        interval = self.client.poll()
        if shown[1] is not None and self.task is None:
            timers.redraw()  # a job ended: its result (or nothing) everywhere, the panel's state
        elif self.task is not None or self.client.state != shown[0]:
            timers.redraw_sidebar()  # progress to show, or the backend's status changed
        return interval

    def wait(self, task: Task) -> None:
        if task.job is not None:
            self.client.wait(task.job)

    def forget_scene_results(self) -> None:
        """A new file is loading: the running job's result has no scene to go to any more."""
        self.file_generation += 1
        if self.client.cancel():
            log.info("a new file was loaded: the running job is cancelled")

    def shutdown(self) -> None:
        self.client.stop("the add-on was disabled")

    def _new_task(self, kind: str, label: str, scene_name: str) -> Task:
        return Task(kind, label, scene_name, self.file_generation)

    def _submit(self, task: Task, fields: dict[str, Any], on_done: Callable) -> Task:
        """Raises client.BusyError or client.BackendUnavailable; nothing changes then."""
        task.job = self.client.submit(
            task.kind, fields, lambda outcome: self._settle(task, outcome, on_done)
        )
        self.task, self.last_error = task, None
        notices.forget()
        return task

    def _settle(self, task: Task, outcome: JobOutcome, on_done: Callable) -> None:
        """Run a task's completion. Whatever fails in it becomes the task's error: it must not
        end the polling timer, which would leave the panel waiting forever."""
        try:
            on_done(outcome)
        except Exception as error:
            log.exception("finishing the %s task failed", task.kind)
            if self.task is task:
                self.task = None
            self._fail(task, task.kind, f"the {task.kind} result could not be used: {error}")

    def _finish(self, task: Task, outcome: JobOutcome) -> bool:
        """Record the outcome; True when the task succeeded and no other file was loaded since."""
        task.error, self.task = outcome.error, None
        if outcome.error is not None:
            if not outcome.cancelled:
                self.last_error = outcome.error
            return False
        if task.file_generation != self.file_generation:
            message = "another file was loaded, so the result was not imported"
            task.error = JobError("cancelled", message, id=outcome.job.id)
            log.info("%s: %s", task.kind, message)
            return False
        return True

    def _on_generated(self, task: Task, request: GenerateRequest, outcome: JobOutcome) -> None:
        if not self._finish(task, outcome):
            return
        scene = bpy.data.scenes.get(request.scene_name)
        if scene is None:
            self._fail(task, "import", f"the scene {request.scene_name!r} no longer exists")
            return
        assert outcome.result is not None
        folder = Path(outcome.result["output_dir"])
        try:
            task.imported = import_job_folder(folder, scene, request.options, stem=request.stem)
        except (JobFolderError, PartsFileError) as error:
            self._fail(task, "import", str(error), "the job folder is kept for inspection")
            return
        notices.announce(notices.imported_text(len(task.imported.parts), task.elapsed))

    def _on_prepared(self, task: Task, outcome: JobOutcome) -> None:
        scene = bpy.data.scenes.get(task.scene_name)
        if not self._finish(task, outcome):
            if scene is not None and outcome.error is not None and not outcome.cancelled:
                scene.partpacker.preview_image = None  # it showed another image's cut-out
            return
        assert outcome.result is not None
        image = load_preview(Path(outcome.result["preview"]))
        if scene is not None:
            scene.partpacker.preview_image = image

    def _on_unloaded(self, task: Task, outcome: JobOutcome) -> None:
        self._finish(task, outcome)

    def _fail(self, task: Task, code: str, message: str, hint: str = "") -> None:
        task.error = self.last_error = JobError(code, message, hint)
        log.error("%s", message)


def load_preview(path: Path) -> bpy.types.Image:
    """The backend's RGBA segmentation PNG as one reused image datablock."""
    image = bpy.data.images.get(PREVIEW_IMAGE_NAME)
    if image is None:
        image = bpy.data.images.load(str(path))
        image.name = PREVIEW_IMAGE_NAME
    image.filepath = stored_path(path)  # relative beside a saved .blend file
    image.reload()
    image.preview_ensure()
    return image


_SESSION: Session | None = None


def start_session(backend: Backend) -> Session:
    global _SESSION
    _SESSION = Session(backend)
    return _SESSION


def current() -> Session:
    if _SESSION is None:
        raise RuntimeError("the PartPacker add-on is not enabled")
    return _SESSION


def end_session() -> None:
    global _SESSION
    timers.stop_polling(_poll_timer)
    if _SESSION is not None:
        _SESSION.shutdown()
    _SESSION = None


def stop_worker() -> None:
    """At interpreter exit: no orphan worker, whatever state Blender is in."""
    if _SESSION is not None:
        _SESSION.client.stop("Blender is closing")
    finish_stopping()


def ensure_polling() -> None:
    """Drive `tick()` from a timer (UI only), which goes on through a file load so that a job
    cancelled by it still has its last events drained."""
    timers.keep_polling(_poll_timer)


def _poll_timer() -> float | None:
    return None if _SESSION is None else _SESSION.tick()
