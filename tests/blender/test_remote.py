"""Generating remotely: the add-on in the bpy module against a real `python -m backend web` with
tiny weights and a token, and against the stand-in of the public Space (a real Gradio server),
both on 127.0.0.1; and the failures a user meets: a wrong or missing token, no server, a silent
server, values the server refuses, Blender offline, cancel."""

from __future__ import annotations

import threading
import time

import bpy
import numpy as np
import pytest
from addon_setup import REPO_ROOT
from remote_servers import (
    TOKEN,
    free_port,
    plain_web_server,
    rembg_model,
    silent_server,
    space_standin,
    web_server,
)
from test_end_to_end import worker_status

__all__ = [
    "plain_web_server",
    "rembg_model",
    "silent_server",
    "space_standin",
    "web_server",
]  # fixtures

ROBOT = REPO_ROOT / "examples" / "robot.png"
QUICK = {"steps": 2, "grid_res": 256, "seed": 11, "randomize_seed": False}


@pytest.fixture
def remote(prefs):
    """The preferences as a test sets them, back to this computer afterwards."""
    yield prefs
    prefs.backend_kind = "LOCAL"
    prefs.server_token = prefs.space_token = ""
    prefs.remote_timeout = 120
    prefs.output_dir = ""


def use_server(prefs, url: str, token: str = TOKEN) -> None:
    prefs.backend_kind, prefs.server_url, prefs.server_token = "SERVER", url, token


def start(addon, **given):
    return addon.generation.start_generation(bpy.context, {"image_path": str(ROBOT), **given})


def run_to_end(session, task, timeout: float = 120.0, until_stage: str = "") -> list[str]:
    """Tick as the panel's timer does; the stages the progress showed, in order."""
    stages: list[str] = []
    deadline = time.monotonic() + timeout
    while session.task is task and time.monotonic() < deadline:
        session.tick()
        progress = task.job.progress
        if progress is not None and (not stages or stages[-1] != progress.stage):
            stages.append(progress.stage)
        if until_stage in stages:
            break
        time.sleep(0.01)
    return stages


def test_generate_through_the_server_imports_what_it_made(addon, remote, web_server):
    use_server(remote, web_server.url)
    session = addon.session.current()
    task = start(addon, **QUICK)
    stages = run_to_end(session, task)
    assert task.error is None, task.error
    assert "In the queue: 1 of 1" in stages and "Sampling" in stages, stages
    root = bpy.data.objects["robot_11"]
    metadata = root["partpacker"].to_dict()
    assert (metadata["backend"], metadata["server"], metadata["seed"]) == (
        "Server",
        web_server.url,
        11,
    )
    assert metadata["params"]["num_steps"] == 2 and metadata["timings"]["total"] > 0
    [server_job] = [
        p for p in (web_server.work_dir / "jobs").iterdir() if (p / "parts.npz").is_file()
    ]
    with np.load(server_job / "parts.npz") as made:
        vertex_counts = np.diff(made["vertex_offsets"]).tolist()
        names = made["names"].tolist()
    assert sorted(child.name for child in root.children) == [f"robot_11_{n}" for n in names]
    assert [len(bpy.data.objects[f"robot_11_{n}"].data.vertices) for n in names] == vertex_counts
    assert session.client.device_name == f"the server {web_server.url}"


def test_prepare_shows_the_servers_segmentation(addon, remote, web_server, tmp_path):
    use_server(remote, web_server.url)
    session = addon.session.current()
    task = session.start_prepare(ROBOT, tmp_path / "preview.png", bpy.context.scene.name)
    session.wait(task)
    assert task.error is None, task.error
    image = bpy.context.scene.partpacker.preview_image
    assert tuple(image.size) == (518, 518)


def test_the_space_standin_with_the_saved_hugging_face_token(
    addon, remote, space_standin, monkeypatch, tmp_path
):
    (tmp_path / "token").write_text("hf_saved_token\n")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setattr(addon.client.remote_settings, "space_url", lambda _id: space_standin.url)
    remote.backend_kind, remote.space_id = "SPACE", "nvidia/PartPacker"
    settings = addon.remote_preferences.remote_settings()
    assert settings.headers() == {"X-HF-Authorization": "Bearer hf_saved_token"}
    parts = addon.api.generate(ROBOT, steps=3, seed=4)
    assert sorted(p.name for p in parts) == [f"robot_4_geometry_{i}" for i in range(5)]
    top = bpy.data.objects["robot_4_geometry_0"]  # the table's top, above its four legs
    assert all(top.location.z > leg.location.z for leg in parts if leg is not top)
    srgb = {tuple(round(c, 4) for c in p.active_material.diffuse_color) for p in parts}
    assert len(srgb) == 5, "each part its own colour"
    metadata = parts[0].parent["partpacker"].to_dict()
    assert (metadata["backend"], metadata["server"]) == ("Hugging Face Space", "nvidia/PartPacker")


def test_the_space_id_names_its_address(addon):
    settings = addon.client.remote_settings
    assert settings.space_url("nvidia/PartPacker") == "https://nvidia-partpacker.hf.space/"
    assert (
        settings.space_url("some_one/Part.Packer-2") == "https://some-one-part-packer-2.hf.space/"
    )
    with pytest.raises(addon.client.BackendUnavailable, match="is not a Space id"):
        settings.space_url("https://example.com")


@pytest.mark.parametrize(
    ("token", "words"), [("wrong-token", "refused the token"), ("", "needs a token")]
)
def test_a_wrong_or_missing_token_is_refused(addon, remote, web_server, token, words):
    use_server(remote, web_server.url, token)
    with pytest.raises(addon.api.GenerationFailed) as failure:
        addon.api.generate(ROBOT, **QUICK)
    assert failure.value.code == "auth"
    assert words in failure.value.message and "HTTP 401" in failure.value.message
    assert "token in the add-on preferences" in failure.value.hint
    assert len(bpy.data.objects) == 0


def test_no_server_at_the_address(addon, remote):
    use_server(remote, f"127.0.0.1:{free_port()}")
    with pytest.raises(addon.api.GenerationFailed) as failure:
        addon.api.generate(ROBOT, **QUICK)
    assert failure.value.code == "unreachable"
    assert "cannot reach the server http://127.0.0.1:" in failure.value.message
    assert "that the server runs" in failure.value.hint


@pytest.mark.parametrize(
    ("config", "code", "words"),
    [
        (None, "not_partpacker", "has no config (HTTP 404): it is not a PartPacker server"),
        ((500, {"detail": "boom"}), "server", "failed (HTTP 500): boom"),
        ((200, {"dependencies": [{"id": 0, "api_name": "predict"}]}), "not_partpacker", "no /"),
    ],
)
def test_a_web_server_that_is_not_partpacker_is_named_so(
    addon, remote, plain_web_server, config, code, words
):
    if config is not None:
        plain_web_server["answers"]["/config"] = config
    use_server(remote, plain_web_server["url"])
    with pytest.raises(addon.api.GenerationFailed) as failure:
        addon.api.generate(ROBOT, **QUICK)
    assert failure.value.code == code
    assert words in failure.value.message


def test_a_silent_server_times_out(addon, remote, silent_server):
    use_server(remote, silent_server)
    remote.remote_timeout = 5
    with pytest.raises(addon.api.GenerationFailed) as failure:
        addon.api.generate(ROBOT, **QUICK)
    assert failure.value.code == "timeout"
    assert "did not answer within 5 s" in failure.value.message


def test_values_the_server_refuses_come_in_its_words(addon, remote, web_server):
    use_server(remote, web_server.url)
    with pytest.raises(addon.api.GenerationFailed) as failure:
        addon.api.generate(ROBOT, **{**QUICK, "grid_res": 32})  # the panel allows it, the API not
    assert failure.value.code == "bad_input"
    assert "grid_res must be between 256 and 512, got 32" in failure.value.message


def test_a_job_folder_that_cannot_be_written_is_said_so(addon, remote, web_server, tmp_path):
    (tmp_path / "a file").write_text("")
    use_server(remote, web_server.url)
    remote.output_dir = str(tmp_path / "a file")
    with pytest.raises(addon.image_input.ImageInputError) as failure:  # before any upload
        addon.api.generate(ROBOT, **QUICK)
    assert "cannot be copied into" in failure.value.message, "the job's copy of the image"
    assert "Job Folders" in failure.value.hint


def test_blender_offline_reaches_no_other_computer(addon, remote):
    use_server(remote, "http://gpu-box.studio.example:7860")
    assert not bpy.app.online_access
    with pytest.raises(addon.client.BackendUnavailable, match="online access is off") as refusal:
        addon.api.generate(ROBOT, **QUICK)
    assert "Allow Online Access" in refusal.value.hint
    assert addon.session.current().task is None


def test_cancel_stops_waiting_and_the_server_stops_the_job(addon, remote, web_server):
    use_server(remote, web_server.url)
    session = addon.session.current()
    task = start(addon, **{**QUICK, "steps": 100})
    run_to_end(session, task, until_stage="Sampling")
    assert session.cancel()
    assert session.task is None and task.error.is_cancellation
    assert session.last_error is None
    assert web_server.log_lines("cancelled by its client", timeout=60)
    assert len(bpy.data.objects) == 0
    assert addon.api.generate(ROBOT, **QUICK), "the server takes the next job"


def test_the_public_spaces_quota_error_says_what_to_do(addon):
    """The message ZeroGPU sends when a user's GPU time is used up (as reported by its users)."""
    message = {
        "msg": "process_completed",
        "success": False,
        "output": {
            "error": "You have exceeded your GPU quota (60s requested vs. 56s left). <a "
            'href="https://huggingface.co/join">Create a free account</a> to get more usage quota.'
        },
    }
    with pytest.raises(addon.client.gradio_http.RemoteError) as failure:
        addon.client.remote_job.call_output(message, "the Space nvidia/PartPacker")
    assert failure.value.code == "quota"
    assert "<a" not in failure.value.message and "60s requested" in failure.value.message
    assert "hf auth login" in failure.value.hint


def test_the_choice_applies_job_by_job_and_freeing_memory_reaches_the_worker(
    addon, backend, remote, web_server
):
    local_parts = addon.api.generate(ROBOT, steps=2, grid_res=32, seed=1)
    use_server(remote, web_server.url)
    remote_parts = addon.api.generate(ROBOT, **QUICK)
    assert local_parts[0].parent["partpacker"]["backend"] == "This computer"
    assert remote_parts[0].parent["partpacker"]["backend"] == "Server"
    session = addon.session.current()
    assert worker_status(session.client.local)["models_loaded"]
    session.wait(session.start_unload())
    assert session.last_error is None
    assert not worker_status(session.client.local)["models_loaded"]


def test_behind_another_clients_job_it_waits_in_the_queue_and_cancel_leaves_it(
    addon, remote, web_server
):
    other = addon.client.gradio_http.GradioConnection(
        web_server.url, {"Authorization": f"Bearer {TOKEN}"}, 60
    )
    other.connect()
    image = addon.client.remote_job.file_data(other.upload(ROBOT))
    started = len(web_server.log_lines(r"job \S+: started"))
    fn = other.function_index("process_3d")
    event = other.join(fn, [image, 100, 7.0, 256, 1, False, 100000], "another-client")
    threading.Thread(target=lambda: list(other.messages("another-client")), daemon=True).start()
    assert len(web_server.log_lines(r"job \S+: started", timeout=60, more_than=started)) > started
    use_server(remote, web_server.url)
    session = addon.session.current()
    task = start(addon, **QUICK)
    assert (
        run_to_end(session, task, until_stage="In the queue: 1 of 1")[-1] == "In the queue: 1 of 1"
    )
    assert session.cancel() and task.error.is_cancellation
    other.cancel(fn, "another-client", event)
    assert addon.api.generate(ROBOT, **QUICK), "the server takes the next job"
    # FIFO: had the cancelled job stayed in the queue, it would have started before this one
    assert len(web_server.log_lines(r"job \S+: started")) == started + 2
