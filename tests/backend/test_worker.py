"""`python -m backend serve` spoken to as the Blender add-on does: JSON lines over real pipes.

One worker serves most tests of this module (models stay loaded, as in use); start-up and
shutdown get workers of their own. A `sitecustomize` makes image loading print to stdout, both
through Python and straight to file descriptor 1, so the tests also show that such prints never
reach the protocol stream.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import backend
from backend.params import GenerationParams
from backend.pipeline import PartPackerPipeline, PipelineSettings
from backend.worker import EventChannel, Worker

REPO = Path(__file__).resolve().parents[2]
ROBOT = REPO / "examples" / "robot.png"
STAGES = ["prepare", "load", "condition", "sample", "decode", "extract", "postprocess", "export"]
EVENTS = {"hello", "progress", "result", "error"}
TIMEOUT = 120.0
QUICK = {"steps": 2, "grid_res": 16, "randomize_seed": False}
NOISE = ("noise printed by a library", "noise written to fd 1")
SITECUSTOMIZE = f"""
import os
import backend.image

_load_image = backend.image.load_image


def noisy_load_image(*args, **kwargs):
    print({NOISE[0]!r}, flush=True)
    os.write(1, {NOISE[1]!r}.encode() + b"\\n")
    return _load_image(*args, **kwargs)


backend.image.load_image = noisy_load_image
"""


class WorkerSession:
    """A worker process, its stdout read as events by a thread, its stderr kept."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "backend", "serve", *args],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self.hello: dict[str, Any] = {}
        self.raw_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._pending: dict[str | None, list[dict[str, Any]]] = {}
        self._ids = itertools.count()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.raw_lines.append(line)
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "not json", "id": None, "line": line}
            self._events.put(event)
        self._events.put(None)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr_lines.append(line)

    def next_event(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        event = self._events.get(timeout=timeout)
        assert event is not None, "the worker closed its stdout:\n" + self.stderr()
        return event

    def send_line(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def request(self, request_type: str, **fields: Any) -> str:
        request_id = f"r{next(self._ids)}"
        self.send_line(json.dumps({"id": request_id, "type": request_type, **fields}))
        return request_id

    def events_until(
        self, request_id: str | None, done: Callable[[dict[str, Any]], bool]
    ) -> list[dict[str, Any]]:
        """The events of one request up to the first for which `done` holds; events of other
        requests wait for their own turn."""
        events = self._pending.setdefault(request_id, [])
        deadline = time.monotonic() + TIMEOUT
        while not any(done(event) for event in events):
            event = self.next_event(timeout=max(deadline - time.monotonic(), 0.01))
            self._pending.setdefault(event.get("id"), []).append(event)
        end = next(index for index, event in enumerate(events) if done(event)) + 1
        taken, self._pending[request_id] = events[:end], events[end:]
        return taken

    def finish(self, request_id: str | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """(progress events, the final result or error) of a request."""
        events = self.events_until(request_id, is_final)
        return events[:-1], events[-1]

    def unclaimed(self, request_id: str | None) -> list[dict[str, Any]]:
        """Events of a request read so far but not yet taken by `events_until`."""
        return self._pending.get(request_id, [])

    def call(self, request_type: str, **fields: Any) -> dict[str, Any]:
        return self.finish(self.request(request_type, **fields))[1]

    def stderr(self) -> str:
        return "".join(self.stderr_lines)

    def close(self) -> int:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
        try:
            return self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()


def is_final(event: dict[str, Any]) -> bool:
    return event["event"] in ("result", "error")


def assert_result(event: dict[str, Any]) -> dict[str, Any]:
    assert event["event"] == "result", event
    return event


def assert_error(event: dict[str, Any], code: str, request_id: str | None) -> None:
    assert event["event"] == "error", event
    assert event["code"] == code, event
    assert event["id"] == request_id
    assert event["message"]
    assert event["traceback"] == ""


@pytest.fixture(scope="module")
def worker(
    tiny_flags: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerSession]:
    noise = tmp_path_factory.mktemp("noise")
    (noise / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(noise), str(REPO)])}
    session = WorkerSession(tiny_flags, env)
    session.hello = session.next_event()
    yield session
    session.close()


def generate(
    worker: WorkerSession, output_dir: Path, **params: Any
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    request_id = worker.request(
        "generate", image=str(ROBOT), output_dir=str(output_dir), params={**QUICK, **params}
    )
    return worker.finish(request_id)


def stages_of(events: list[dict[str, Any]]) -> list[str]:
    return [event["stage"] for event in events if event["event"] == "progress"]


def test_hello_is_the_first_line(worker: WorkerSession) -> None:
    hello = worker.hello
    assert hello["event"] == "hello"
    assert hello["protocol"] == 1
    assert hello["backend_version"] == backend.__version__
    assert hello["device"] == "cpu"
    assert hello["dtype"] == "float32"
    assert hello["pid"] == worker.process.pid


def test_generate_reports_progress_then_one_result(worker: WorkerSession, tmp_path: Path) -> None:
    progress, final = generate(worker, tmp_path / "job", seed=11)
    result = assert_result(final)
    assert progress and all(event["event"] == "progress" for event in progress)
    order = [STAGES.index(stage) for stage in stages_of(progress)]
    assert order == sorted(order)
    assert {"sample", "decode", "export"} <= set(stages_of(progress))
    sample = [event for event in progress if event["stage"] == "sample"]
    assert (sample[-1]["step"], sample[-1]["total"]) == (2, 2)
    elapsed = [event["elapsed"] for event in progress]
    assert elapsed == sorted(elapsed)
    assert result["seed"] == 11
    assert result["parts"]
    for key in ("glb", "npz", "preview", "result_json"):
        assert Path(result[key]).is_file()
    with np.load(result["npz"]) as arrays:
        assert list(arrays["names"]) == [part["name"] for part in result["parts"]]
    assert set(result["timings"]) >= {"sample", "decode"}
    # Exactly one final event: a later request's answer comes with nothing else for this job.
    assert_result(worker.call("status"))
    assert worker.unclaimed(final["id"]) == []


@pytest.mark.slow  # minutes on a CPU: the tiny VAE is queried at millions of points
def test_the_default_decoder_gives_the_official_mesh_on_levels_that_do_not_double(
    worker: WorkerSession, tiny_settings: PipelineSettings, tmp_path: Path
) -> None:
    """Grid 129 decodes at 64 then 129: the worker's default mesh is the official decoder's
    (hierarchical, run here in-process), and decoding reports progress within each level."""
    job = worker.request(
        "generate",
        image=str(ROBOT),
        output_dir=str(tmp_path / "default"),
        params={**QUICK, "seed": 5, "grid_res": 129},
    )
    events: list[dict[str, Any]] = []
    while not events or not is_final(events[-1]):  # each event within TIMEOUT of the last
        events += worker.events_until(job, lambda event: True)
    progress, final = events[:-1], events[-1]
    worker_parts = read_parts(Path(assert_result(final)["npz"]))
    official = PartPackerPipeline(replace(tiny_settings, decode_strategy="hierarchical"))
    params = GenerationParams(steps=2, grid_res=129, seed=5, randomize_seed=False)
    official_parts = read_parts(official.generate(ROBOT, tmp_path / "official", params).npz)
    assert worker_parts["face_offsets"][-1] > 1000
    for key in ("face_offsets", "faces", "vertices"):
        np.testing.assert_array_equal(worker_parts[key], official_parts[key], err_msg=key)
    decode = [event for event in progress if event["stage"] == "decode"]
    assert decode[-1]["step"] == decode[-1]["total"] == 2 * 2 * 100
    assert len({event["step"] for event in decode if event["step"] % 100}) > 4


def read_parts(npz: Path) -> dict[str, np.ndarray]:
    with np.load(npz) as arrays:
        return {key: arrays[key] for key in ("face_offsets", "faces", "vertices")}


def test_the_same_seed_gives_the_same_parts_and_another_seed_others(
    worker: WorkerSession, tmp_path: Path
) -> None:
    results = [
        assert_result(generate(worker, tmp_path / name, seed=seed)[1])
        for name, seed in (("a", 5), ("b", 5), ("c", 6))
    ]
    vertices = []
    for result in results:
        with np.load(result["npz"]) as arrays:
            vertices.append(arrays["vertices"])
    assert results[0]["parts"] == results[1]["parts"]
    np.testing.assert_array_equal(vertices[0], vertices[1])
    assert vertices[0].shape != vertices[2].shape or not np.array_equal(vertices[0], vertices[2])


def test_randomized_seed_is_reported(worker: WorkerSession, tmp_path: Path) -> None:
    result = assert_result(generate(worker, tmp_path / "job", randomize_seed=True)[1])
    recorded = json.loads(Path(result["result_json"]).read_text())
    assert recorded["seed"] == result["seed"]
    assert 0 <= result["seed"] < 2**31 - 1


def cancel_at(worker: WorkerSession, stage: str, tmp_path: Path, **params: Any) -> None:
    """Cancel a generation at its first progress event of `stage`: it ends as cancelled, with
    no progress of a later stage, and the next job works."""
    job = worker.request(
        "generate", image=str(ROBOT), output_dir=str(tmp_path / "cancelled"), params=params
    )
    worker.events_until(job, lambda event: event.get("stage") == stage)
    cancel = worker.request("cancel", job=job)
    assert assert_result(worker.finish(cancel)[1])["cancelled"] is True
    progress, final = worker.finish(job)
    assert_error(final, "cancelled", job)
    later = STAGES[STAGES.index(stage) + 1 :]
    assert not set(stages_of(progress)) & set(later)
    assert_result(generate(worker, tmp_path / "next")[1])


def test_cancel_during_sampling(worker: WorkerSession, tmp_path: Path) -> None:
    cancel_at(worker, "sample", tmp_path, steps=100, grid_res=16)


def test_cancel_during_decoding(worker: WorkerSession, tmp_path: Path) -> None:
    cancel_at(worker, "decode", tmp_path, steps=2, grid_res=48)


def test_cancel_a_queued_job_ends_it_without_running(worker: WorkerSession, tmp_path: Path) -> None:
    running = worker.request(
        "generate", image=str(ROBOT), output_dir=str(tmp_path / "a"), params={**QUICK, "steps": 100}
    )
    queued = worker.request(
        "generate", image=str(ROBOT), output_dir=str(tmp_path / "b"), params=QUICK
    )
    worker.events_until(running, lambda event: event.get("stage") == "sample")
    status = assert_result(worker.call("status"))
    assert (status["busy_job"], status["queued"]) == (running, 1)
    assert worker.call("cancel", job=queued)["cancelled"] is True
    progress, final = worker.finish(queued)
    assert_error(final, "cancelled", queued)
    assert progress == []
    assert worker.call("cancel", job=running)["cancelled"] is True
    assert_error(worker.finish(running)[1], "cancelled", running)
    assert not (tmp_path / "b").exists()


def test_a_reused_live_id_is_refused_without_ending_the_live_request(
    worker: WorkerSession, tmp_path: Path
) -> None:
    running = worker.request(
        "generate", image=str(ROBOT), output_dir=str(tmp_path / "a"), params={**QUICK, "steps": 100}
    )
    worker.events_until(running, lambda event: event.get("stage") == "sample")
    for request_type in ("status", "prepare", "bogus"):
        worker.send_line(json.dumps({"id": running, "type": request_type, "image": str(ROBOT)}))
        refusal = worker.finish(None)[1]
        assert_error(refusal, "protocol", None)
        assert running in refusal["message"]
    assert not [event for event in worker.unclaimed(running) if is_final(event)]
    assert worker.call("cancel", job=running)["cancelled"] is True
    assert_error(worker.finish(running)[1], "cancelled", running)


def test_cancel_of_an_ended_job_says_so(worker: WorkerSession, tmp_path: Path) -> None:
    job = worker.request("prepare", image=str(ROBOT), output=str(tmp_path / "preview.png"))
    assert_result(worker.finish(job)[1])
    assert assert_result(worker.call("cancel", job=job))["cancelled"] is False


@pytest.mark.parametrize(
    ("line", "code", "answered_id"),
    [
        ("this is not json", "protocol", None),
        ("[1, 2]", "protocol", None),
        ('{"type": "status"}', "protocol", None),
        ('{"id": 7, "type": "status"}', "protocol", None),
        ('{"id": "t1", "type": "dance"}', "protocol", "t1"),
        ('{"id": "t2"}', "protocol", "t2"),
        ('{"id": "t3", "type": "generate", "output_dir": "/tmp/x"}', "protocol", "t3"),
        ('{"id": "t4", "type": "generate", "image": 5, "output_dir": "/tmp/x"}', "protocol", "t4"),
        ('{"id": "t5", "type": "prepare", "image": "a.png"}', "protocol", "t5"),
        ('{"id": "t6", "type": "cancel"}', "protocol", "t6"),
        (
            '{"id": "t7", "type": "generate", "image": "a.png", "output_dir": "x", "params": 3}',
            "protocol",
            "t7",
        ),
        (
            '{"id": "t8", "type": "generate", "image": "a.png", "output_dir": "x", '
            '"params": {"steps": 0}}',
            "bad_input",
            "t8",
        ),
        (
            '{"id": "t9", "type": "generate", "image": "a.png", "output_dir": "x", '
            '"params": {"cfg_scale": "high"}}',
            "bad_input",
            "t9",
        ),
        (
            '{"id": "t10", "type": "generate", "image": "a.png", "output_dir": "x", '
            '"params": {"wobble": 1}}',
            "bad_input",
            "t10",
        ),
        ('{"id": "t11", "type": "cancel", "job": "nobody"}', "bad_input", "t11"),
    ],
)
def test_bad_requests_get_an_error_and_the_worker_goes_on(
    worker: WorkerSession, line: str, code: str, answered_id: str | None
) -> None:
    worker.send_line(line)
    progress, final = worker.finish(answered_id)
    assert progress == []
    assert_error(final, code, answered_id)
    assert final["hint"]
    assert assert_result(worker.call("status"))["busy_job"] is None


def test_job_errors_carry_code_and_hint(worker: WorkerSession, tmp_path: Path) -> None:
    missing = worker.call(
        "generate", image=str(tmp_path / "missing.png"), output_dir=str(tmp_path / "job")
    )
    assert_error(missing, "bad_input", missing["id"])
    assert "missing.png" in missing["message"]
    assert missing["hint"]
    blocker = tmp_path / "a_file"
    blocker.write_text("in the way")
    unwritable = worker.call(
        "generate", image=str(ROBOT), output_dir=str(blocker / "job"), params=QUICK
    )
    assert_error(unwritable, "output", unwritable["id"])
    assert_result(generate(worker, tmp_path / "fine")[1])


def test_prepare_writes_the_segmentation_preview(
    worker: WorkerSession, object_image: Path, tmp_path: Path
) -> None:
    preview = tmp_path / "preview.png"
    result = assert_result(worker.call("prepare", image=str(object_image), output=str(preview)))
    assert result["preview"] == str(preview)
    assert preview.is_file()
    assert result["had_alpha"] is False
    assert (result["width"], result["height"]) == (518, 518)


def test_unload_then_generate_loads_again(worker: WorkerSession, tmp_path: Path) -> None:
    assert_result(generate(worker, tmp_path / "before")[1])
    assert worker.call("status")["models_loaded"] is True
    freed = assert_result(worker.call("unload"))["freed_bytes"]
    assert isinstance(freed, int) and freed >= 0
    assert worker.call("status")["models_loaded"] is False
    progress, final = generate(worker, tmp_path / "after")
    assert_result(final)
    assert "load" in stages_of(progress)
    assert "load" in json.loads(Path(final["result_json"]).read_text())["timings"]
    assert worker.call("status")["models_loaded"] is True


def test_stdout_holds_only_protocol_events(worker: WorkerSession, tmp_path: Path) -> None:
    assert_result(worker.call("prepare", image=str(ROBOT), output=str(tmp_path / "p.png")))
    deadline = time.monotonic() + TIMEOUT
    while not all(noise in worker.stderr() for noise in NOISE) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(noise in worker.stderr() for noise in NOISE), "the library prints ran"
    for line in worker.raw_lines:
        event = json.loads(line)
        assert isinstance(event, dict) and event["event"] in EVENTS, line


@pytest.fixture
def own_worker(tiny_flags: list[str]) -> Iterator[WorkerSession]:
    session = WorkerSession(tiny_flags)
    assert session.next_event()["event"] == "hello"
    yield session
    session.close()


def test_end_of_input_exits_0(own_worker: WorkerSession) -> None:
    assert own_worker.close() == 0


def test_shutdown_cancels_the_running_job_answers_and_exits_0(
    own_worker: WorkerSession, tmp_path: Path
) -> None:
    job = own_worker.request(
        "generate",
        image=str(ROBOT),
        output_dir=str(tmp_path / "job"),
        params={**QUICK, "steps": 100},
    )
    own_worker.events_until(job, lambda event: event.get("stage") == "sample")
    shutdown = own_worker.request("shutdown")
    assert_error(own_worker.finish(job)[1], "cancelled", job)
    assert_result(own_worker.finish(shutdown)[1])
    assert own_worker.process.wait(timeout=30) == 0


def test_unusable_settings_end_the_worker_before_hello(tiny_flags: list[str]) -> None:
    session = WorkerSession([*tiny_flags, "--decode-strategy", "guesswork"])
    first = session.next_event()
    assert_error(first, "bad_input", None)
    assert "guesswork" in first["message"]
    assert session.close() == 2


def test_a_bug_in_a_job_is_an_internal_error_with_its_traceback() -> None:
    class BrokenPipeline:
        loaded = False

        def prepare(self, image: Path, preview: Path) -> None:
            raise RuntimeError("a bug")

    stream = io.StringIO()
    worker = Worker(BrokenPipeline(), EventChannel(stream))  # type: ignore[arg-type]
    runner = threading.Thread(target=worker.run)
    runner.start()
    worker.handle_line(json.dumps({"id": "p", "type": "prepare", "image": "a", "output": "b"}))
    deadline = time.monotonic() + TIMEOUT
    while not stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop(None)
    runner.join()
    (event,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert (event["event"], event["id"], event["code"]) == ("error", "p", "internal")
    assert event["message"] == "internal error: RuntimeError: a bug"
    assert 'raise RuntimeError("a bug")' in event["traceback"]
