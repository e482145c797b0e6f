"""Planning the backend's environment: which PyTorch build suits the machine, which Python to
build it from, the venv and pip steps, and what pip's and the download's output lines say."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import tomllib
from addon_setup import REPO_ROOT
from helpers import fake_python

NVIDIA_SMI_HEADER = """
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 550.54.15              Driver Version: 550.54.15      CUDA Version: 12.4     |
|-----------------------------------------+------------------------+----------------------+
"""


# --- Which PyTorch build -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("system", "architecture", "cuda", "kind", "index"),
    [
        ("Darwin", "arm64", None, "mps", None),
        ("Linux", "x86_64", (12, 4), "cuda", "https://download.pytorch.org/whl/cu124"),
        ("Windows", "x86_64", (12, 9), "cuda", "https://download.pytorch.org/whl/cu128"),
        ("Windows", "x86_64", (13, 1), "cuda", "https://download.pytorch.org/whl/cu130"),
        ("Linux", "x86_64", (12, 2), "cuda", "https://download.pytorch.org/whl/cu121"),
        ("Linux", "x86_64", (11, 4), "cpu", "https://download.pytorch.org/whl/cpu"),
        ("Windows", "x86_64", None, "cpu", "https://download.pytorch.org/whl/cpu"),
        ("Linux", "arm64", None, "cpu", "https://download.pytorch.org/whl/cpu"),
    ],
)
def test_torch_build_suits_the_machine(
    setup_modules, system, architecture, cuda, kind, index
) -> None:
    machine = setup_modules.machine.Machine(system, architecture, cuda_version=cuda)
    build = setup_modules.torch_build.choose_torch_build(machine)
    assert (build.kind, build.index_url) == (kind, index)
    assert build.reason


def test_cuda_version_is_read_from_nvidia_smi(setup_modules) -> None:
    parse = setup_modules.machine.parse_cuda_version
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
    found = setup_modules.python_finder.find_pythons(setup_modules.machine.read_machine())
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
    machine = setup_modules.machine.Machine("Linux", "x86_64", cuda_version=(12, 6))
    build = setup_modules.torch_build.choose_torch_build(machine)
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
    assert "Python 3.12" in steps[0].label
    pip_steps = steps[1:]
    assert all(step.command[0] == str(tmp_path / "env" / "bin" / "python") for step in pip_steps)
    assert all(step.command[-3:] == ["--no-index", "--find-links", "/wheels"] for step in pip_steps)
    torch_step = next(
        step for step in steps if "torch>=2.4" in step.command and "numpy>=1.26" not in step.command
    )
    assert "https://download.pytorch.org/whl/cu126" in torch_step.command
    assert "--no-deps" in torch_step.command, "its dependencies come from the default index"
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
        torch=setup_modules.torch_build.choose_torch_build(
            setup_modules.machine.Machine("Linux", "x86_64")
        ),
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
