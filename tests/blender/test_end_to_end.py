"""End to end: the operators drive a real backend worker (`python -m backend serve`) running
tiny random weights on the CPU. One worker serves the whole module where settings allow."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import bpy
import pytest
from addon_setup import REPO_ROOT, disable_addon, enable_addon

ROBOT = REPO_ROOT / "examples" / "robot.png"
QUICK = {"grid_res": 32, "steps": 2}


def start(addon, **given):
    """A generate job started without blocking, as the panel does."""
    return addon.generation.start_generation(bpy.context, {"image_path": str(ROBOT), **given})


def poll_until_stage(session, task, stage: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        session.tick()
        progress = task.job.progress
        if session.task is not task or (progress is not None and progress.stage == stage):
            break
        time.sleep(0.01)
    assert session.task is task, f"the job ended before its {stage} stage: {task.error}"
    assert task.job.progress.stage == stage


def worker_status(client) -> dict:
    """The worker's answer to a `status` request (backend/PROTOCOL.md)."""
    outcomes = []
    client.wait(client.submit("status", {}, outcomes.append), timeout=30)
    assert outcomes[0].error is None, outcomes[0].error
    return outcomes[0].result


def objects_of(collection_name: str) -> list[bpy.types.Object]:
    return list(bpy.data.collections[collection_name].objects)


def test_generate_puts_one_object_per_part_at_the_cursor(addon, backend):
    bpy.context.scene.cursor.location = (1.0, -2.0, 0.5)
    result = bpy.ops.partpacker.generate(
        image_path=str(ROBOT), seed=7, randomize_seed=False, size=3.0, **QUICK
    )
    assert result == {"FINISHED"}

    root = bpy.data.objects["robot_7"]
    metadata = root["partpacker"].to_dict()
    record = json.loads((Path(metadata["job_folder"]) / "result.json").read_text())
    parts = sorted((o for o in objects_of("robot_7") if o.type == "MESH"), key=lambda o: o.name)
    assert len(parts) == len(record["parts"]) > 0
    assert [o.name for o in parts] == [f"robot_7_{p['name']}" for p in record["parts"]]
    assert tuple(root.location) == pytest.approx((1.0, -2.0, 0.5))
    assert tuple(root.scale) == pytest.approx((1.5, 1.5, 1.5))
    for obj, part in zip(parts, record["parts"], strict=True):
        assert obj.parent == root
        assert len(obj.data.polygons) == part["faces"]
        assert obj.material_slots[0].material.name == obj.name
    assert metadata["seed"] == 7
    assert metadata["params"]["steps"] == 2
    assert metadata["params"]["grid_res"] == 32
    kept = Path(metadata["image"])
    assert kept.parent.name == Path(metadata["job_folder"]).name, "its job's own copy"
    assert kept.name == ROBOT.name and kept.read_bytes() == ROBOT.read_bytes()
    assert set(metadata["timings"]) >= {"sample", "decode"}
    assert addon.session.current().last_error is None


def test_a_seed_given_by_a_script_is_the_seed_used(addon, backend):
    assert bpy.context.scene.partpacker.randomize_seed, "the panel's default"
    assert bpy.ops.partpacker.generate(image_path=str(ROBOT), seed=5, **QUICK) == {"FINISHED"}
    assert bpy.data.objects["robot_5"]["partpacker"]["seed"] == 5


def test_a_failing_import_is_the_tasks_error_and_polling_goes_on(addon, backend, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no room for more objects")

    monkeypatch.setattr(addon.session, "import_job_folder", broken)
    task = start(addon, **QUICK)
    backend.wait(task)
    assert backend.task is not task and task.imported is None
    assert "no room for more objects" in task.error.message
    assert backend.task is None and backend.last_error is task.error
    monkeypatch.undo()
    assert bpy.ops.partpacker.generate(image_path=str(ROBOT), **QUICK) == {"FINISHED"}


def test_prepare_shows_the_segmentation(addon, backend):
    bpy.context.scene.partpacker.image_path = str(ROBOT)
    assert bpy.ops.partpacker.prepare() == {"FINISHED"}
    preview = bpy.context.scene.partpacker.preview_image
    assert preview is not None
    assert tuple(preview.size) == (518, 518)
    assert preview.channels == 4
    assert not bpy.data.objects


def test_cancel_mid_job_imports_nothing_and_is_not_an_error(addon, backend):
    task = start(addon, steps=50, grid_res=32)
    poll_until_stage(backend, task, "sample")
    # Freeze the worker so that the cancel surely arrives mid-sampling.
    os.kill(backend.client.local.hello.pid, signal.SIGSTOP)
    assert bpy.ops.partpacker.cancel() == {"FINISHED"}
    os.kill(backend.client.local.hello.pid, signal.SIGCONT)
    backend.wait(task)
    assert task.error is not None and task.error.code == "cancelled"
    assert backend.last_error is None
    assert not bpy.data.objects
    assert bpy.ops.partpacker.generate(image_path=str(ROBOT), **QUICK) == {"FINISHED"}


def test_cancel_with_a_stuck_worker_stops_it_and_ends_as_cancelled(addon, backend):
    task = start(addon, steps=50, grid_res=32)
    poll_until_stage(backend, task, "sample")
    stuck = backend.client.local.hello.pid
    os.kill(stuck, signal.SIGSTOP)  # and never continued: it cannot answer the cancel
    assert bpy.ops.partpacker.cancel() == {"FINISHED"}
    backend.wait(task)
    assert task.error.is_cancellation, task.error
    assert "did not stop" in task.error.message
    assert backend.last_error is None, "a cancel is not a failure"
    with pytest.raises(ProcessLookupError):
        os.kill(stuck, 0)
    assert not bpy.data.objects
    assert bpy.ops.partpacker.generate(image_path=str(ROBOT), **QUICK) == {"FINISHED"}
    assert backend.client.local.hello.pid != stuck


def test_a_second_generate_while_busy_is_refused(addon, backend):
    task = start(addon, **QUICK)
    with pytest.raises(RuntimeError, match="already running"):
        bpy.ops.partpacker.generate(image_path=str(ROBOT), **QUICK)
    backend.wait(task)
    assert task.error is None
    assert len([o for o in bpy.data.objects if o.type == "EMPTY"]) == 1


def test_loading_a_file_mid_job_cancels_it_and_imports_nothing(addon, backend):
    task = start(addon, steps=50, grid_res=32)
    poll_until_stage(backend, task, "sample")
    bpy.ops.wm.read_homefile(use_empty=True)
    backend.wait(task)
    assert task.error is not None and task.error.is_cancellation
    assert task.imported is None
    assert not bpy.data.objects


def test_a_killed_worker_is_reported_and_the_next_job_starts_a_fresh_one(addon, backend):
    task = start(addon, steps=50, grid_res=32)
    poll_until_stage(backend, task, "sample")
    killed = backend.client.local.hello.pid
    os.kill(killed, signal.SIGKILL)
    backend.wait(task)
    assert task.error.code == "worker_died"
    assert backend.last_error is task.error
    assert not bpy.data.objects
    assert bpy.ops.partpacker.generate(image_path=str(ROBOT), **QUICK) == {"FINISHED"}
    assert backend.client.local.hello.pid != killed
    assert backend.last_error is None


def test_a_hung_worker_is_stopped_and_reported(addon, backend, prefs):
    prefs.hang_timeout = 2  # applies to the next job, without restarting the worker
    task = start(addon, steps=50, grid_res=32)
    poll_until_stage(backend, task, "sample")
    frozen = backend.client.local.hello.pid
    os.kill(frozen, signal.SIGSTOP)
    backend.wait(task)
    assert task.error.code == "worker_hung"
    with pytest.raises(ProcessLookupError):
        os.kill(frozen, 0)


def test_free_memory_then_generate_again(addon, backend):
    assert bpy.ops.partpacker.generate(image_path=str(ROBOT), **QUICK) == {"FINISHED"}
    assert bpy.ops.partpacker.free_memory() == {"FINISHED"}
    assert backend.last_error is None
    assert not worker_status(backend.client)["models_loaded"]
    assert bpy.ops.partpacker.generate(image_path=str(ROBOT), **QUICK) == {"FINISHED"}


def test_low_memory_and_fast_start_cache_reach_the_worker(addon, backend, prefs):
    prefs.low_memory = True
    prefs.fast_start_cache = True
    try:
        command = addon.settings.worker_settings().command()
        assert "--low-memory" in command
        cache = Path(command[command.index("--weights-cache") + 1])
        assert bpy.ops.partpacker.generate(image_path=str(ROBOT), **QUICK) == {"FINISHED"}
        assert backend.last_error is None
        converted = sorted(p.name.split("-")[0] for p in cache.glob("*.safetensors"))
        assert converted == ["flow", "model", "vae"]
    finally:
        prefs.low_memory = False
        prefs.fast_start_cache = False


def test_python_api_and_rerun_from_a_selected_part(addon, backend):
    parts = addon.api.generate(str(ROBOT), seed=11, randomize_seed=False, **QUICK)
    assert parts and all(p.name.startswith("robot_11_part_") for p in parts)
    bpy.context.view_layer.objects.active = parts[0]
    assert bpy.ops.partpacker.rerun() == {"FINISHED"}
    roots = [o for o in bpy.data.objects if o.type == "EMPTY"]
    assert len(roots) == 2
    (again,) = [root for root in roots if root is not parts[0].parent]
    assert bpy.context.view_layer.objects.active == again, "the new result is the active one"
    assert set(bpy.context.selected_objects) == {again, *again.children}
    seeds = {root["partpacker"]["seed"] for root in roots}
    assert 11 in seeds and len(seeds) == 2
    folder = roots[0]["partpacker"]["job_folder"]
    imported = addon.api.import_job_folder(folder)
    assert len(imported) == len([o for o in roots[0].children])


def test_python_api_refuses_unknown_parameters_and_raises_what_the_backend_said(
    addon, backend, prefs, tmp_path
):
    with pytest.raises(TypeError, match="num_steps"):
        addon.api.generate(str(ROBOT), num_steps=3)
    prefs.weights_dir = str(tmp_path)  # no weights in it: the worker restarts with it
    with pytest.raises(addon.api.GenerationFailed) as failed:
        addon.api.generate(str(ROBOT), **QUICK)
    assert failed.value.code == "weights"
    assert failed.value.message and failed.value.hint
    assert not bpy.data.objects


def test_disabling_the_addon_mid_job_stops_the_worker_and_imports_nothing(addon, backend):
    task = start(addon, steps=50, grid_res=32)
    poll_until_stage(backend, task, "sample")
    pid = backend.client.local.hello.pid
    os.kill(pid, signal.SIGSTOP)  # stuck: only SIGKILL ends it, after the stop timeouts
    disable_addon()
    try:
        assert task.error is not None and task.error.is_cancellation
        assert not bpy.data.objects
        assert running(pid), "disabling returned without waiting for the worker to end"
        deadline = time.monotonic() + 30
        while running(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not running(pid), "ended in the background"
    finally:
        assert enable_addon() is addon


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
