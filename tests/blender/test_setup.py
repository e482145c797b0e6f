"""The setup section: finding a Python, choosing the PyTorch build, planning and REALLY building the
backend's environment (from a local wheelhouse, no network), streaming progress and cancelling;
fetching and checking weights through the backend's own commands."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType

import bpy
import pytest
import tomllib
from addon_setup import disable_addon, enable_addon
from helpers import drawn_in_own_process

REPO_ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = Path(os.environ.get("PARTPACKER_WHEELHOUSE", "/tmp/partpacker-wheelhouse"))
NVIDIA_SMI_HEADER = """
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 550.54.15              Driver Version: 550.54.15      CUDA Version: 12.4     |
|-----------------------------------------+------------------------+----------------------+
"""


def setup_module_named(addon: ModuleType, name: str) -> ModuleType:
    return importlib.import_module(f"{addon.__name__}.setup.{name}")


@pytest.fixture
def setup_modules(addon) -> ModuleType:
    """The setup subpackage's modules as attributes: setup_modules.runner, .environment, ..."""
    namespace = ModuleType("setup_modules")
    for name in ("environment", "python_finder", "runner", "state", "torch_build", "weights"):
        setattr(namespace, name, setup_module_named(addon, name))
    return namespace


@pytest.fixture
def online(monkeypatch):
    """Blender's "Allow Online Access" on for one test (it is off in the bpy module)."""
    system = bpy.context.preferences.system
    monkeypatch.setattr(system, "use_online_access", True)
    assert bpy.app.online_access


# --- Which PyTorch build -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("system", "cuda", "kind", "index"),
    [
        ("Darwin", None, "mps", None),
        ("Linux", (12, 4), "cuda", "https://download.pytorch.org/whl/cu124"),
        ("Windows", (12, 9), "cuda", "https://download.pytorch.org/whl/cu128"),
        ("Linux", (12, 2), "cuda", "https://download.pytorch.org/whl/cu121"),
        ("Linux", (11, 4), "cpu", "https://download.pytorch.org/whl/cpu"),
        ("Windows", None, "cpu", "https://download.pytorch.org/whl/cpu"),
        ("Linux", None, "cpu", "https://download.pytorch.org/whl/cpu"),
    ],
)
def test_torch_build_suits_the_machine(setup_modules, system, cuda, kind, index) -> None:
    build = setup_modules.torch_build.choose_torch_build(system, cuda)
    assert (build.kind, build.index_url) == (kind, index)
    assert build.reason


def test_cuda_version_is_read_from_nvidia_smi(setup_modules) -> None:
    parse = setup_modules.torch_build.parse_cuda_version
    assert parse(NVIDIA_SMI_HEADER) == (12, 4)
    assert parse("NVIDIA-SMI has failed because it couldn't communicate with the driver") is None


# --- Finding a Python ----------------------------------------------------------------------------


def test_a_real_python_is_accepted(setup_modules, backend_python: Path) -> None:
    found = setup_modules.python_finder.check_python(backend_python)
    expected = subprocess.run(
        [str(backend_python), "-c", "import sys; print(*sys.version_info[:3])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert found.version == tuple(int(part) for part in expected)
    assert found.executable.is_file()


def test_found_pythons_are_new_enough_and_distinct(setup_modules) -> None:
    found = setup_modules.python_finder.find_pythons()
    assert found, "this machine has Python 3.10+ on PATH"
    assert all(install.version >= (3, 10, 0) for install in found)
    resolved = [install.executable.resolve() for install in found]
    assert len(resolved) == len(set(resolved))
    assert [i.version for i in found] == sorted((i.version for i in found), reverse=True)


def test_the_newest_python_with_pytorch_wheels_is_chosen(setup_modules) -> None:
    finder = setup_modules.python_finder
    newest = finder.PythonInstall(Path("/opt/python3.14"), (3, 14, 0))
    supported = finder.PythonInstall(Path("/usr/bin/python3.12"), (3, 12, 3))
    assert finder.choose_python([newest, supported]) == supported
    assert finder.choose_python([newest]) == newest
    with pytest.raises(finder.PythonNotUsable, match=r"no Python 3\.10 or newer"):
        finder.choose_python([])


def fake_python(folder: Path, body: str) -> Path:
    script = folder / "python"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return script


def test_old_or_broken_pythons_are_refused_with_reasons(setup_modules, tmp_path: Path) -> None:
    finder = setup_modules.python_finder
    old = fake_python(tmp_path, """echo '{"version": [3, 8, 10], "executable": "/x/python"}'""")
    with pytest.raises(finder.PythonNotUsable, match="too old"):
        finder.check_python(old)
    no_venv = tmp_path / "novenv"
    no_venv.mkdir()
    broken = fake_python(
        no_venv, "echo \"ModuleNotFoundError: No module named 'ensurepip'\" >&2; exit 1"
    )
    with pytest.raises(finder.PythonNotUsable, match="ensurepip") as refused:
        finder.check_python(broken)
    assert "venv" in refused.value.hint
    with pytest.raises(finder.PythonNotUsable, match="does not exist"):
        finder.check_python(tmp_path / "missing" / "python")


def test_an_existing_environment_needs_no_venv_support(setup_modules, tmp_path: Path) -> None:
    finder = setup_modules.python_finder
    existing = fake_python(
        tmp_path,
        'case "$2" in *ensurepip*) echo "No module named ensurepip" >&2; exit 1;; esac\n'
        """echo '{"version": [3, 12, 1], "executable": "/env/bin/python"}'""",
    )
    assert finder.check_python(existing, for_venv=False).executable == Path("/env/bin/python")
    with pytest.raises(finder.PythonNotUsable, match="cannot create environments"):
        finder.check_python(existing)


def test_a_program_that_does_not_answer_as_python_is_refused(setup_modules, tmp_path) -> None:
    finder = setup_modules.python_finder
    with pytest.raises(finder.PythonNotUsable, match="did not answer as a Python does"):
        finder.check_python(fake_python(tmp_path, "echo hello"))


# --- Planning the environment --------------------------------------------------------------------


def test_requirements_come_from_pyproject_in_a_checkout(setup_modules) -> None:
    with (REPO_ROOT / "pyproject.toml").open("rb") as file:
        expected = tuple(tomllib.load(file)["project"]["dependencies"])
    assert setup_modules.environment.backend_requirements(REPO_ROOT) == expected


def test_requirements_come_from_the_packaged_file(setup_modules, tmp_path: Path) -> None:
    (tmp_path / "backend").mkdir()
    (tmp_path / "backend" / "requirements.txt").write_text(
        "# generated\ntorch>=2.4\n\nnumpy>=1.26  # arrays\n"
    )
    assert setup_modules.environment.backend_requirements(tmp_path) == ("torch>=2.4", "numpy>=1.26")


def test_plan_installs_torch_from_its_index_then_the_rest(
    setup_modules, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("PYTHONHOME", "/blender/python")  # as Blender may set for itself
    monkeypatch.setenv("PYTHONPATH", "/blender/scripts")
    environment = setup_modules.environment
    build = setup_modules.torch_build.choose_torch_build("Linux", (12, 6))
    plan = environment.EnvironmentPlan(
        base_python=Path("/usr/bin/python3.12"),
        env_dir=tmp_path / "env",
        requirements=("torch>=2.4", "numpy>=1.26", "rembg>=2.0.50"),
        torch=build,
        system="Linux",
        pip_args=("--no-index", "--find-links", "/wheels"),
    )
    steps = environment.setup_steps(plan, (3, 12))
    assert steps[0].command == ["/usr/bin/python3.12", "-m", "venv", str(tmp_path / "env")]
    pip_steps = steps[1:]
    assert all(step.command[0] == str(tmp_path / "env" / "bin" / "python") for step in pip_steps)
    assert all(step.command[-3:] == ["--no-index", "--find-links", "/wheels"] for step in pip_steps)
    torch_step = next(
        step for step in steps if "torch>=2.4" in step.command and "numpy>=1.26" not in step.command
    )
    assert "https://download.pytorch.org/whl/cu126" in torch_step.command
    last = steps[-1].command
    assert {"torch>=2.4", "numpy>=1.26", "rembg>=2.0.50"} <= set(last)
    assert "--index-url" not in last
    for step in steps:
        assert "PYTHONHOME" not in step.env and "PYTHONPATH" not in step.env
        assert step.env["PATH"] == os.environ["PATH"]
    windows = environment.environment_python(tmp_path, "Windows")
    assert windows == tmp_path / "Scripts" / "python.exe"


def test_an_environment_of_another_python_version_is_rebuilt(setup_modules, tmp_path) -> None:
    environment = setup_modules.environment
    plan = environment.EnvironmentPlan(
        base_python=Path("/usr/bin/python3.12"),
        env_dir=tmp_path,
        requirements=("torch>=2.4",),
        torch=setup_modules.torch_build.choose_torch_build("Linux", None),
        system="Linux",
    )
    assert "--clear" not in environment.setup_steps(plan, (3, 12))[0].command
    (tmp_path / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.12.4\n")
    assert "--clear" not in environment.setup_steps(plan, (3, 12))[0].command
    (tmp_path / "pyvenv.cfg").write_text("home = /usr/bin\nversion_info = 3.10.12\n")
    assert "--clear" in environment.setup_steps(plan, (3, 12))[0].command


# --- Progress lines ------------------------------------------------------------------------------


def test_pip_progress_lines_give_bytes(setup_modules) -> None:
    runner, environment = setup_modules.runner, setup_modules.environment
    status = runner.RunStatus(steps=4, step=2)
    environment.read_pip_line("Collecting torch>=2.4", status)
    assert status.detail == "Collecting torch>=2.4"
    environment.read_pip_line("Progress 1048576 of 4194304 bytes", status)
    assert (status.done_bytes, status.total_bytes) == (1048576, 4194304)
    assert status.fraction == pytest.approx((2 + 0.25) / 4)
    environment.read_pip_line("Progress 10 of ?", status)
    assert (status.done_bytes, status.total_bytes) == (10, None)
    environment.read_pip_line("Downloading scipy-1.17.1.whl (35.2 MB)", status)
    assert status.detail.startswith("Downloading scipy") and status.done_bytes is None


def test_download_progress_lines_give_bytes(setup_modules) -> None:
    weights, runner = setup_modules.weights, setup_modules.runner
    status = runner.RunStatus(steps=1)
    weights.read_download_line(
        "flow.pt:  45%|####5     | 2.25G/5.00G [00:10<00:12, 210MB/s]", status
    )
    assert (status.done_bytes, status.total_bytes) == (2_250_000_000, 5_000_000_000)
    assert "flow.pt" in status.detail
    weights.read_download_line('{"file": "vae.pt", "downloaded": 300, "total": 1200}', status)
    assert (status.done_bytes, status.total_bytes, status.detail) == (
        300,
        1200,
        "Downloading vae.pt",
    )


# --- Running steps -------------------------------------------------------------------------------


def python_step(runner: ModuleType, label: str, code: str, **fields):
    return runner.Step(label, [sys.executable, "-u", "-c", code], **fields)


def run_steps(setup_modules: ModuleType, steps):
    """Run `steps` to their end as the setup operators do in background mode."""
    setup = setup_modules.state.SetupState()
    activity = setup.start(steps)
    setup.wait(timeout=60)
    return activity.runner


BOTH_STREAMS = "import sys; print('one'); print('to stderr', file=sys.stderr)"


def test_steps_run_in_order_and_stream_their_output(setup_modules) -> None:
    runner = setup_modules.runner
    steps = [
        python_step(runner, "first", BOTH_STREAMS),
        python_step(runner, "second", "print('two')"),
    ]
    run = run_steps(setup_modules, steps)
    status = run.status
    assert status.succeeded and not status.error
    assert run.stdout == ["two"]
    assert sorted(run.output) == ["one", "to stderr", "two"]
    assert status.fraction == 1.0


def test_a_failing_step_stops_the_run_and_says_why(setup_modules) -> None:
    runner = setup_modules.runner
    failing = "import sys; print('ERROR: No matching distribution found for torch'); sys.exit(1)"
    steps = [
        python_step(runner, "Install PyTorch", failing),
        python_step(runner, "never", "open('should-not-run', 'w')"),
    ]
    status = run_steps(setup_modules, steps).status
    assert not status.succeeded and not status.cancelled
    assert status.label == "Install PyTorch"
    assert "exit code 1" in status.error
    assert "No matching distribution found for torch" in status.error


def test_a_step_may_judge_its_own_exit_code(setup_modules) -> None:
    runner = setup_modules.runner
    seen = []
    step = python_step(
        runner,
        "doctor",
        "import sys; print('{\"ok\": false}'); sys.exit(3)",
        check_exit=lambda code, stdout, output: seen.append((code, stdout)),
    )
    status = run_steps(setup_modules, [step]).status
    assert status.succeeded
    assert seen == [(3, ['{"ok": false}'])]


def test_cancel_stops_the_child_process(setup_modules) -> None:
    runner = setup_modules.runner
    code = "import os, time; print(os.getpid(), flush=True); time.sleep(120)"
    run = runner.StepRunner([python_step(runner, "Install PyTorch", code)])
    while not run.stdout:
        run.poll()
    pid = int(run.stdout[0])
    run.cancel()
    assert run.status.cancelled and run.status.finished and not run.status.succeeded
    assert "Install PyTorch" in run.status.error
    assert run.poll() is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_disabling_the_addon_stops_a_running_setup_step(addon, setup_modules) -> None:
    runner = setup_modules.runner
    code = "import os, time; print(os.getpid(), flush=True); time.sleep(120)"
    setup = setup_modules.state.current()
    setup.start([python_step(runner, "Install PyTorch", code)])
    deadline = time.monotonic() + 30
    run = setup.activity.runner
    while not run.stdout and time.monotonic() < deadline:
        setup.poll()
        time.sleep(0.05)
    pid = int(run.stdout[0])
    disable_addon()
    try:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    finally:
        assert enable_addon() is addon


# --- The operators -------------------------------------------------------------------------------


def test_setup_downloads_nothing_while_blender_is_offline(addon, tmp_path) -> None:
    assert not bpy.app.online_access
    assert not bpy.ops.partpacker.download_weights.poll()
    assert not bpy.ops.partpacker.setup_backend_with_python.poll()
    with pytest.raises(RuntimeError, match="Online access is off"):
        bpy.ops.partpacker.setup_backend()
    missing = tmp_path / "nowhere" / "python3"
    with pytest.raises(RuntimeError, match="does not exist"):  # past the offline check
        bpy.ops.partpacker.setup_backend(
            python=str(missing), pip_options=f"--no-index --find-links {tmp_path}"
        )


def test_a_picked_python_that_does_not_exist_is_refused(addon, prefs, online, tmp_path) -> None:
    prefs.backend_python = ""
    missing = tmp_path / "nowhere" / "python3"
    with pytest.raises(RuntimeError, match="does not exist"):
        bpy.ops.partpacker.setup_backend_with_python(filepath=str(missing))
    assert prefs.backend_python == ""
    assert not (Path(bpy.utils.extension_path_user(addon.__name__)) / "backend-env").exists()


def test_use_existing_python_points_at_it_and_checks_it(
    addon, prefs, backend_python: Path, tiny_weights: Path, monkeypatch, tmp_path
) -> None:
    """Works offline: nothing is downloaded. A too-old Python is refused first."""
    old = fake_python(tmp_path, """echo '{"version": [3, 9, 2], "executable": "/x/python"}'""")
    prefs.backend_python = ""
    with pytest.raises(RuntimeError, match="too old"):
        bpy.ops.partpacker.use_existing_python(filepath=str(old))
    assert prefs.backend_python == ""
    monkeypatch.setenv("PARTPACKER_MODEL_CONFIG", str(tiny_weights / "model_config.json"))
    prefs.weights_source, prefs.weights_dir, prefs.device = "FOLDER", str(tiny_weights), "cpu"
    addon.setup.backend_check.current().report = None
    try:
        assert bpy.ops.partpacker.use_existing_python(filepath=str(backend_python)) == {"FINISHED"}
    finally:
        prefs.weights_source, prefs.weights_dir = "HF_CACHE", ""
    assert Path(prefs.backend_python).samefile(backend_python)
    report = addon.setup.backend_check.current().report
    assert report is not None and report.ok, report


def test_setup_backend_builds_a_working_environment_from_local_wheels(
    addon, prefs, online, backend_python: Path, tmp_path: Path
) -> None:
    """A real venv in the extension's user folder, pip installing the backend's requirements
    from a wheelhouse (no network), then the backend's doctor run from it."""
    wheelhouse = local_wheelhouse(backend_python, tmp_path)
    prefs.backend_python = ""
    result = bpy.ops.partpacker.setup_backend(
        python=str(backend_python),
        pip_options=f"--no-index --find-links {wheelhouse} --no-compile",
    )
    assert result == {"FINISHED"}
    user_folder = Path(bpy.utils.extension_path_user(addon.__name__))
    env_python = Path(prefs.backend_python)
    assert env_python.is_file() and env_python.is_relative_to(user_folder)
    assert not env_python.is_relative_to(REPO_ROOT)
    imports = "import torch, numpy, scipy, skimage, trimesh, rembg, huggingface_hub, safetensors"
    completed = subprocess.run(
        [str(env_python), "-c", f"{imports}; import sys; print(sys.prefix)"],
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stderr
    assert Path(completed.stdout.strip()) == env_python.parents[1]
    report = addon.setup.backend_check.current().report
    assert report is not None and report.findings
    assert any("torch" in finding.text.lower() for finding in report.findings), report


def local_wheelhouse(backend_python: Path, scratch: Path) -> Path:
    """Wheels for the backend's requirements at the backend venv's versions (plus a pip that
    reports progress), downloaded once per machine: pip's own find-links/cache serve torch."""
    with (REPO_ROOT / "pyproject.toml").open("rb") as file:
        requirements = tomllib.load(file)["project"]["dependencies"]
    marker = WHEELHOUSE / "requirements.json"
    if marker.is_file() and json.loads(marker.read_text()) == requirements:
        return WHEELHOUSE
    pins = scratch / "pins.txt"
    freeze = [str(backend_python), "-m", "pip", "freeze", "--exclude-editable"]
    pins.write_text(subprocess.run(freeze, capture_output=True, text=True, check=True).stdout)
    download = [str(backend_python), "-m", "pip", "download", "-q", "-d", str(WHEELHOUSE)]
    subprocess.run([*download, "-c", str(pins), "pip>=24.1", *requirements], check=True)
    marker.write_text(json.dumps(requirements))
    return WHEELHOUSE


def test_setup_can_be_cancelled_mid_install(setup_modules, backend_python: Path, tmp_path) -> None:
    environment, state = setup_modules.environment, setup_modules.state
    plan = environment.EnvironmentPlan(
        base_python=backend_python,
        env_dir=tmp_path / "env",
        requirements=("torch>=2.4",),
        torch=setup_modules.torch_build.choose_torch_build("Linux", None),
        system="Linux",
        pip_args=("--no-index", "--find-links", str(tmp_path / "no-wheels-here")),
    )
    setup = state.SetupState()
    activity = setup.start(environment.setup_steps(plan, (3, 11)))
    while activity.status.step == 0 and not activity.status.finished:
        time.sleep(setup.poll() or 0.05)
    assert activity.status.label == "Update pip"
    assert setup.cancel()
    assert activity.status.cancelled and not activity.status.succeeded
    assert setup.activity is None and setup.last is activity
    assert (tmp_path / "env" / "bin" / "python").is_file(), "the venv step had finished"


# --- Weights -------------------------------------------------------------------------------------

HUB_FILES = (
    ("nvidia/PartPacker", "flow.pt"),
    ("nvidia/PartPacker", "vae.pt"),
    ("facebook/dinov2-giant", "model.safetensors"),
)


def test_weight_table_agrees_with_the_backends(setup_modules, backend_python: Path) -> None:
    code = (
        "import json; from backend.weights import WEIGHT_SOURCES as s; "
        "print(json.dumps([[w.repo_id, w.filename, w.approx_bytes] for w in s]))"
    )
    completed = subprocess.run(
        [str(backend_python), "-c", code], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr
    backend = json.loads(completed.stdout)
    ours = setup_modules.weights.WEIGHT_FILES
    assert [[w.repo_id, w.filename] for w in ours] == [entry[:2] for entry in backend]
    for weight, (_, _, size) in zip(ours, backend, strict=True):
        assert abs(weight.approx_bytes - size) < 0.05 * size, weight.filename
    assert [w.repo_id + "/" + w.filename for w in ours] == [f"{r}/{f}" for r, f in HUB_FILES]


def offline_hub_cache(root: Path, weights: Path, leave_out: str = "") -> Path:
    """A Hugging Face cache as huggingface_hub lays it out (refs/main -> snapshots/<commit>)."""
    for index, (repo_id, filename) in enumerate(HUB_FILES):
        if filename == leave_out:
            continue
        repo = root / f"models--{repo_id.replace('/', '--')}"
        commit = f"{index + 1:040x}" if repo_id == "facebook/dinov2-giant" else "a" * 40
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(commit)
        snapshot = repo / "snapshots" / commit
        snapshot.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(weights / filename, snapshot / filename)
    return root


@pytest.fixture
def offline_backend(addon, prefs, online, backend_python, tiny_weights, monkeypatch):
    """The backend with the tiny weights' model sizes; the hub unreachable (HF_HUB_OFFLINE)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PARTPACKER_MODEL_CONFIG", str(tiny_weights / "model_config.json"))
    prefs.backend_python = str(backend_python)
    prefs.device = "cpu"
    addon.setup.backend_check.current().report = None
    yield prefs
    prefs.weights_source, prefs.cache_dir, prefs.weights_dir = "HF_CACHE", "", ""


def findings_about(report, filename: str) -> list:
    return [finding for finding in report.findings if filename in finding.text]


def test_download_finds_the_weights_in_an_offline_cache_and_checks_them(
    addon, offline_backend, tiny_weights: Path, tmp_path: Path
) -> None:
    offline_backend.weights_source = "HF_CACHE"
    offline_backend.cache_dir = str(offline_hub_cache(tmp_path / "hub", tiny_weights))
    assert bpy.ops.partpacker.download_weights() == {"FINISHED"}
    report = addon.setup.backend_check.current().report
    assert report is not None and report.ok, report
    for _, filename in HUB_FILES:
        about = findings_about(report, filename)
        assert about and all(finding.ok for finding in about), (filename, report)


def test_a_file_missing_from_the_offline_cache_is_named(
    addon, offline_backend, tiny_weights: Path, tmp_path: Path
) -> None:
    offline_backend.weights_source = "HF_CACHE"
    cache = offline_hub_cache(tmp_path / "hub", tiny_weights, leave_out="vae.pt")
    offline_backend.cache_dir = str(cache)
    with pytest.raises(RuntimeError, match=r"vae\.pt"):
        bpy.ops.partpacker.download_weights()
    last = setup_module_named(addon, "state").current().last
    assert not last.status.succeeded and "Download the weights" in last.status.error


def test_local_folder_missing_and_corrupt_files_are_reported(
    addon, offline_backend, tiny_weights: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "weights"
    shutil.copytree(tiny_weights, folder)
    offline_backend.weights_source = "FOLDER"
    offline_backend.weights_dir = str(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(RuntimeError, match=r"model\.safetensors"):
        bpy.ops.partpacker.download_weights()
    shutil.copyfile(tiny_weights / "model.safetensors", folder / "model.safetensors")
    flow = folder / "flow.pt"
    flow.write_bytes(flow.read_bytes()[: flow.stat().st_size // 2])
    assert bpy.ops.partpacker.download_weights() == {"FINISHED"}
    report = addon.setup.backend_check.current().report
    assert report is not None and not report.ok
    broken = findings_about(report, "flow.pt")
    assert broken and not any(finding.ok for finding in broken), report
    assert all(finding.ok for finding in findings_about(report, "vae.pt")), report


# --- The preferences' setup section, drawn with real layouts ----------------------------------


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    """draw_setup in several states, in its own process (see draw_panels.py for why)."""
    output = tmp_path_factory.mktemp("draw-setup") / "drawn.json"
    drawing = f"import test_setup; test_setup.draw_in_popup({str(output)!r})"
    return drawn_in_own_process(["-c", drawing], output)


def drawn_texts(record: list[dict], call: str = "label") -> list[str]:
    return [entry["text"] or "" for entry in record if entry["call"] == call]


def drawn_operators(record: list[dict]) -> list[str]:
    return [entry["args"][0] for entry in record if entry["call"] == "operator"]


def test_setup_section_offers_setup_and_weights(drawn) -> None:
    record = drawn["offline"]
    assert "EXCEPTION" not in [entry["call"] for entry in record], record
    assert {
        "partpacker.setup_backend",
        "partpacker.setup_backend_with_python",
        "partpacker.use_existing_python",
    } <= set(drawn_operators(record))
    assert "partpacker.download_weights" in drawn_operators(record)
    labels = " | ".join(drawn_texts(record))
    assert "Not set up yet" in labels
    for name, size in (
        ("flow.pt", "5.0 GB"),
        ("vae.pt", "1.4 GB"),
        ("model.safetensors", "4.5 GB"),
    ):
        assert name in labels and size in labels
    assert "Online access is off" in labels
    assert "Online access is off" not in " | ".join(drawn_texts(drawn["online"]))


def test_setup_section_shows_progress_and_cancel_while_running(drawn) -> None:
    record = drawn["running"]
    assert "EXCEPTION" not in [entry["call"] for entry in record], record
    assert "partpacker.cancel_setup" in drawn_operators(record)
    assert drawn_texts(record, "progress") == ["256.0 MB of 1.0 GB"]
    assert any("Install PyTorch" in text for text in drawn_texts(record))


def test_setup_section_shows_why_the_last_run_failed(drawn) -> None:
    labels = drawn_texts(drawn["failed"])
    assert any("No matching distribution found for torch" in text for text in labels), labels


def test_weights_section_shows_the_checks_word_on_each_file(drawn) -> None:
    record = drawn["checked"]
    table_rows = [
        entry
        for entry in record
        if entry["call"] == "label" and (entry["text"] or "").endswith(("PartPacker)", "giant)"))
    ]
    icons = {entry["text"].split(":")[0]: entry["icon"] for entry in table_rows}
    assert icons.get("flow.pt") == "CHECKMARK"
    assert icons.get("vae.pt") == "ERROR"
    assert icons.get("model.safetensors") == "QUESTION"
    labels = drawn_texts(record)
    assert any("vae.pt: truncated" in text for text in labels)
    assert any("download it again" in text for text in labels)
    assert "partpacker.check_backend" in drawn_operators(record)


def draw_in_popup(output: str) -> None:
    """Runs in a fresh process: draw the setup section in each state into a real popup layout."""
    from draw_panels import RecordingLayout

    class IconRecordingLayout(RecordingLayout):
        """draw_panels' recorder that also writes down each call's icon."""

        def __getattr__(self, name: str):
            attribute = super().__getattr__(name)
            if not callable(attribute):
                return attribute

            def call(*args, **kwargs):
                result = attribute(*args, **kwargs)
                self._record[-1]["icon"] = kwargs.get("icon")
                if isinstance(result, RecordingLayout):
                    return IconRecordingLayout(result._layout, self._record)
                return result

            return call

    addon = enable_addon()
    setup_state = setup_module_named(addon, "state").current()
    runner = setup_module_named(addon, "runner")
    draw_setup = addon.preferences.draw_setup

    def scenarios(menu, context) -> None:
        drawn: dict[str, list] = {}

        def draw(name: str) -> None:
            drawn[name] = record = []
            try:
                draw_setup(IconRecordingLayout(menu.layout, record), context)
            except Exception:  # the test reports it
                record.append({"call": "EXCEPTION", "args": [traceback.format_exc()], "text": ""})

        try:
            draw("offline")
            activity = setup_state.start(
                [runner.Step("Install PyTorch (CPU)", [sys.executable, "-c", "input()"])],
            )
            activity.status.done_bytes, activity.status.total_bytes = 256_000_000, 1_000_000_000
            draw("running")
            setup_state.cancel()
            setup_state.last.status.cancelled = False
            setup_state.last.status.error = "ERROR: No matching distribution found for torch"
            draw("failed")
            context.preferences.system.use_online_access = True
            draw("online")
            check = setup_module_named(addon, "backend_check")
            check.current().report = check.DoctorReport(
                False,
                [
                    check.Finding(True, "/w/flow.pt: 53 tensors match (5.00 GB)"),
                    check.Finding(False, "/w/vae.pt: truncated", "download it again"),
                ],
            )
            draw("checked")
            Path(output).write_text(json.dumps(drawn, indent=1))
        finally:
            sys.stdout.flush()
            os._exit(0)

    bpy.context.window_manager.popup_menu(scenarios, title="PartPacker setup")
