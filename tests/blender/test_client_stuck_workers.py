"""The client with workers that are stuck, slow or runaway (stand-ins, stand_in_worker.py): a
cancel always ends the job, progress keeps a slow job alive, a stopping worker never holds up
Blender, a line of any length costs Blender bounded memory."""

from __future__ import annotations

from stand_in_worker import (
    HELLO_THEN_READ,
    finish,
    gone_soon,
    indented,
    process_gone,
    settings,
    stand_in_backend,
    started_pid,
    until_ready,
)


def test_a_cancel_the_worker_does_not_answer_stops_it_and_ends_the_job_as_cancelled(
    addon, tmp_path
):
    root = stand_in_backend(tmp_path, HELLO_THEN_READ + indented("pass  # never answers"), True)
    client = addon.client.WorkerClient(lambda: settings(addon, root, cancel_grace=0.3))
    job = client.submit("generate", {})
    until_ready(client)
    pid = started_pid(root)
    assert client.cancel()
    outcome = finish(client, job)
    assert outcome.cancelled, outcome.error
    assert "did not stop the job" in outcome.error.message
    assert process_gone(pid)
    assert client.state is addon.client.WorkerState.STOPPED


def test_a_slow_job_that_keeps_reporting_progress_is_not_taken_for_hung(addon, tmp_path):
    body = """
        if request["type"] == "generate":
            import time
            for step in range(15):  # 1.5 s in all, three times the hang timeout
                say(event="progress", id=request["id"], stage="decode", step=step, total=15)
                time.sleep(0.1)
            say(event="result", id=request["id"], output_dir="x")
    """
    root = stand_in_backend(tmp_path, HELLO_THEN_READ + indented(body))
    client = addon.client.WorkerClient(lambda: settings(addon, root, hang_timeout=0.5))
    outcome = finish(client, client.submit("generate", {}))
    assert outcome.error is None, outcome.error
    assert outcome.result == {"output_dir": "x"}
    client.stop()


def test_a_job_with_new_settings_does_not_wait_for_the_old_worker_to_exit(addon, tmp_path):
    """The old worker ignores the end of its input and SIGTERM: stopping it takes the stop
    timeout twice, then SIGKILL. submit() leaves that to the background and goes on."""
    main = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    main += HELLO_THEN_READ + indented('say(event="result", id=request["id"])')
    main += "time.sleep(60)  # after the end of its input\n"
    root = stand_in_backend(tmp_path, main, write_pid=True)
    device = ["cpu"]
    client = addon.client.WorkerClient(
        lambda: settings(addon, root, device=device[0], stop_timeout=1.0)
    )
    assert finish(client, client.submit("status", {})).error is None
    old = started_pid(root)
    device[0] = "cuda"  # another launch command: the next job needs a new worker
    job = client.submit("status", {})
    assert not process_gone(old), "submit() returned before the old worker could be ended"
    assert finish(client, job).error is None
    assert started_pid(root) != old
    assert gone_soon(old), "ended in the background"
    client.stop()


def test_a_line_too_long_to_read_stops_the_worker_with_a_protocol_error(addon, tmp_path):
    body = """
        print("x" * 20_000_000, flush=True)  # a runaway line, 20 MB
    """
    root = stand_in_backend(tmp_path, HELLO_THEN_READ + indented(body), write_pid=True)
    client = addon.client.WorkerClient(lambda: settings(addon, root))
    job = client.submit("generate", {})
    pid = started_pid(root)
    outcome = finish(client, job)
    assert outcome.error.code == "protocol"
    assert "20 MB" in outcome.error.message
    assert process_gone(pid)
    assert client.state is addon.client.WorkerState.STOPPED
