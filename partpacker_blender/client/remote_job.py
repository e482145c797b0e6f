"""One job on a remote backend, run in a thread of its own: its progress and its one outcome go
into a queue that the main thread drains (remote.py). Plain Python: no bpy.

A job calls the Space's endpoints as its page does: /process_image, then /process_3d with that
segmentation, so that Prepare and Generate see the same cut-out on every backend.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from .gradio_http import GradioConnection, RemoteError
from .protocol import JobError, Progress, Result
from .remote_settings import RemoteSettings

log = logging.getLogger(__name__)

MAX_SEED = 2**31 - 1
QUOTA = re.compile(r"GPU quota|ZeroGPU quota|quota exceeded", re.IGNORECASE)
HTML_TAG = re.compile(r"<[^>]+>")
QUOTA_HINT = (
    "the public Space limits GPU time per user: log in to Hugging Face (`hf auth login`, or a "
    "token in the add-on preferences) for a larger quota, wait until it refills, or use a "
    "server of your own"
)

OUTPUT_HINT = "choose a Job Folders location you can write to in the add-on preferences"


class _Cancelled(Exception):
    """The job was cancelled: its thread stops quietly, the client has already said so."""


def file_data(server_path: str) -> dict[str, Any]:
    return {"path": server_path, "meta": {"_type": "gradio.FileData"}}


def space_parameters(params: dict[str, Any], seed: int) -> list[Any]:
    """/process_3d's arguments after its image, in the Space's order."""
    return [
        int(params["steps"]),
        float(params["cfg_scale"]),
        int(params["grid_res"]),
        seed,
        bool(params["simplify"]),
        int(params["target_faces"]),
    ]


class RemoteRun:
    """A job's thread. `request_cancel()` may come at any time, from the main thread."""

    def __init__(
        self,
        job_id: str,
        job_type: str,
        fields: dict[str, Any],
        settings: RemoteSettings,
        events: queue.Queue,
    ) -> None:
        self.job_id, self.job_type, self.fields = job_id, job_type, fields
        self.settings = settings
        self.events = events
        self.started = time.monotonic()
        self.connection = GradioConnection(
            settings.url, settings.headers(), settings.timeout, settings.label
        )
        self._lock = threading.Lock()
        self._cancelled = False
        self._call: tuple[int, str, str] | None = None
        self._thread = threading.Thread(target=self._run, name=f"partpacker-{job_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request_cancel(self) -> None:
        """Stop waiting, and tell the server: it leaves the queue or stops at its next check."""
        with self._lock:
            self._cancelled, call = True, self._call
        if call is not None:
            threading.Thread(target=self._send_cancel, args=call, daemon=True).start()

    def _run(self) -> None:
        try:
            fields = self._generate() if self.job_type == "generate" else self._prepare()
            self.events.put(Result(self.job_id, fields))
        except _Cancelled:
            log.info("remote job %s cancelled", self.job_id)
        except RemoteError as error:
            self.events.put(JobError(error.code, error.message, error.hint, id=self.job_id))
        except OSError as error:  # the network's are RemoteErrors: this is the job folder's
            message = f"cannot write the job's files: {error.strerror or error}"
            self.events.put(JobError("output", message, OUTPUT_HINT, id=self.job_id))
        except Exception as error:  # the main thread must hear of every end
            log.exception("remote job %s failed", self.job_id)
            message = f"talking to {self.settings.label} failed: {error}"
            self.events.put(JobError("internal", message, id=self.job_id))

    def _prepare(self) -> dict[str, Any]:
        self._connect()
        segmentation = self._segmentation(Path(self.fields["image"]))
        preview = Path(self.fields["output"])
        self.connection.download(segmentation, preview)
        return {"preview": str(preview)}

    def _generate(self) -> dict[str, Any]:
        timings: dict[str, float] = {}
        clock = time.monotonic()
        image, params = Path(self.fields["image"]), self.fields["params"]
        output_dir = Path(self.fields["output_dir"])
        output_dir.mkdir(parents=True, exist_ok=True)
        self._connect()
        segmentation = self._segmentation(image)
        timings["prepare"], clock = time.monotonic() - clock, time.monotonic()
        seed = random.randrange(MAX_SEED) if params["randomize_seed"] else int(params["seed"])
        arguments = [file_data(segmentation), *space_parameters(params, seed)]
        glb, server_seconds = self._call_function("process_3d", arguments)
        timings["generate"], clock = time.monotonic() - clock, time.monotonic()
        self._progress("Downloading the result")
        self.connection.download(segmentation, output_dir / "preview.png")
        self.connection.download(_server_path(glb), output_dir / "parts.glb")
        timings["download"] = time.monotonic() - clock
        timings["server"] = server_seconds
        timings["total"] = time.monotonic() - self.started
        record = self._record(image, seed, arguments[1:], timings)
        (output_dir / "result.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
        return {"output_dir": str(output_dir), "seed": seed, "timings": timings}

    def _record(
        self, image: Path, seed: int, arguments: list[Any], timings: dict[str, float]
    ) -> dict[str, Any]:
        """result.json as the worker writes it (what the importer reads), plus where it ran."""
        names = ("num_steps", "cfg_scale", "grid_res", "seed", "simplify_mesh", "target_num_faces")
        return {
            "image": str(image),
            "seed": seed,
            "params": dict(zip(names, arguments, strict=True)),
            "timings": timings,
            "backend": self.settings.kind_name,
            "server": self.settings.space_id or self.settings.url,
            "device": {"device_name": self.settings.label},
        }

    def _connect(self) -> None:
        """Read the app's config; one without the Space's endpoints is refused before uploading."""
        self._progress("Connecting")
        self.connection.connect()
        for api_name in ("process_image", "process_3d"):
            self.connection.function_index(api_name)

    def _segmentation(self, image: Path) -> str:
        """Upload `image` and cut it out (/process_image): the segmentation's path there."""
        self._progress("Uploading the image")
        uploaded = self.connection.upload(image)
        output, _seconds = self._call_function("process_image", [file_data(uploaded)])
        return _server_path(output)

    def _call_function(self, api_name: str, data: list[Any]) -> tuple[Any, float]:
        """Queue a call and follow it to its end: its first output and the server's seconds."""
        self._check_cancelled()
        fn_index = self.connection.function_index(api_name)
        session_hash = uuid.uuid4().hex
        event_id = self.connection.join(fn_index, data, session_hash)
        with self._lock:
            self._call = (fn_index, session_hash, event_id)
            cancelled = self._cancelled
        if cancelled:
            self._send_cancel(fn_index, session_hash, event_id)
        for message in self.connection.messages(session_hash):
            self._check_cancelled()
            if message.get("msg") == "process_completed":
                return call_output(message, self.settings.label)
            self._follow(message)
        self._check_cancelled()
        raise RemoteError(
            "server",
            f"{self.settings.label} closed the connection before the job ended",
            "try again",
        )

    def _follow(self, message: dict[str, Any]) -> None:
        kind = message.get("msg")
        if kind == "estimation":
            rank, size = message.get("rank") or 0, message.get("queue_size") or 0
            self._progress(f"In the queue: {rank + 1} of {max(size, rank + 1)}")
        elif kind == "progress":
            for unit in message.get("progress_data") or []:
                step, total = unit.get("index"), unit.get("length")
                self._progress(unit.get("desc") or "Working", step or 0, total or 0)
        elif kind == "log":
            log.warning("%s: %s", self.settings.label, message.get("log"))
        elif kind == "unexpected_error":
            raise RemoteError("server", f"{self.settings.label}: {message.get('message')}")

    def _check_cancelled(self) -> None:
        with self._lock:
            if self._cancelled:
                raise _Cancelled

    def _send_cancel(self, fn_index: int, session_hash: str, event_id: str) -> None:
        try:
            self.connection.cancel(fn_index, session_hash, event_id)
        except RemoteError as error:
            log.warning("could not tell %s to cancel: %s", self.settings.label, error.message)

    def _progress(self, stage: str, step: int = 0, total: int = 0) -> None:
        elapsed = time.monotonic() - self.started
        self.events.put(Progress(self.job_id, stage, int(step), int(total), elapsed))


def call_output(message: dict[str, Any], label: str) -> tuple[Any, float]:
    """A process_completed message's first output and the server's seconds; a failed call as a
    RemoteError: the public Space's GPU quota, our server's error codes (its titles), others."""
    output = message.get("output") or {}
    if message.get("success") and output.get("data"):
        return output["data"][0], float(output.get("duration") or 0.0)
    text = HTML_TAG.sub("", str(output.get("error") or "")).strip()
    if QUOTA.search(text):
        raise RemoteError("quota", f"{label}: {text}", QUOTA_HINT)
    title = str(message.get("title") or output.get("title") or "")
    code = title if re.fullmatch(r"[a-z_]+", title) else "server"
    if not text:
        text = "the job failed and the server did not say why"
    raise RemoteError(code, f"{label}: {text}", _hint(code))


def _server_path(output: Any) -> str:
    """A file output's path on the server (Gradio gives a FileData object, old ones a path)."""
    path = output.get("path") if isinstance(output, dict) else output
    if not isinstance(path, str) or not path:
        raise RemoteError("server", f"the server answered without a file: {output!r}"[:300])
    return path


def _hint(code: str) -> str:
    if code == "bad_input":
        return "change the image or the settings"
    if code == "out_of_memory":
        return "lower the grid resolution, or ask the server's owner"
    return "try again; if it keeps failing, the server's log says why"
