"""Planning Set Up Backend (planning.py) from its inputs and a machine's facts: refusals before
anything is probed or written, the exact versions where the Python suits them, the steps that
install them, pip's failure said in the user's terms, and what happens to a running worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from addon_setup import REPO_ROOT
from helpers import fake_python

LINUX_ARGS = ("Linux", "x86_64")


@pytest.fixture
def constraints(setup_modules):
    """The checkout's constraints.txt, as the add-on reads it."""
    found = setup_modules.environment.backend_constraints(REPO_ROOT)
    assert found is not None and found.path == REPO_ROOT / "constraints.txt"
    return found


def request(setup_modules, tmp_path: Path, constraints, python: Path | None = None):
    return setup_modules.planning.SetupRequest(
        env_dir=tmp_path / "backend-env",
        requirements=("torch>=2.4", "numpy>=1.26"),
        constraints=constraints,
        python=python,
    )


def python_of_version(folder: Path, version: str, machine: str = "x86_64") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    numbers = ", ".join(version.split("."))
    report = f'{{"version": [{numbers}], "executable": "{folder}/python", "machine": "{machine}"}}'
    return fake_python(folder, f"echo '{report}'")


def no_search():
    raise AssertionError("the machine's Pythons must not be searched")


def test_pinned_versions_are_installed_where_the_python_suits_them(
    setup_modules, constraints, tmp_path
) -> None:
    planning, machine = setup_modules.planning, setup_modules.machine
    python = python_of_version(tmp_path / "py312", "3.12.4")
    asked = request(setup_modules, tmp_path, constraints, python)
    plan, base = planning.plan_environment(asked, machine.Machine(*LINUX_ARGS), no_search)
    assert base.version == (3, 12, 4) and plan.constraints == constraints.path
    torch_step, rest_step = setup_modules.environment.setup_steps(plan, (3, 12))[2:]
    for step in (torch_step, rest_step):
        at = step.command.index("-c")
        assert step.command[at + 1] == str(constraints.path)


def test_a_python_too_old_for_the_pins_installs_within_the_ranges(
    setup_modules, constraints, tmp_path
) -> None:
    planning, machine = setup_modules.planning, setup_modules.machine
    assert constraints.requires_python > (3, 10)
    python = python_of_version(tmp_path / "py310", "3.10.12")
    asked = request(setup_modules, tmp_path, constraints, python)
    plan, _ = planning.plan_environment(asked, machine.Machine(*LINUX_ARGS), no_search)
    assert plan.constraints is None
    assert all(
        "-c" not in step.command for step in setup_modules.environment.setup_steps(plan, (3, 10))
    )


@pytest.mark.parametrize(
    ("macos", "pinned"), [((13, 6), False), ((14, 0), True), ((15, 1), True), (None, False)]
)
def test_macos_older_than_the_pins_wheels_installs_within_the_ranges(
    setup_modules, constraints, tmp_path, macos, pinned
) -> None:
    """PyTorch's pinned release has macOS wheels from macOS 14 on (13 gets 2.11 at most)."""
    planning, machine = setup_modules.planning, setup_modules.machine
    assert constraints.requires_macos == (14, 0)
    python = python_of_version(tmp_path / "py312", "3.12.4", machine="arm64")
    mac = machine.Machine("Darwin", "arm64", macos_version=macos)
    plan, _ = planning.plan_environment(
        request(setup_modules, tmp_path, constraints, python), mac, no_search
    )
    assert (plan.constraints == constraints.path) is pinned
    assert (plan.constraints is None) is not pinned
    reason = planning.why_not_pinned(constraints, (3, 12), mac)
    assert (reason is None) is pinned
    assert pinned or "macOS 14.0" in reason


def test_the_best_python_found_is_used_when_none_was_picked(
    setup_modules, constraints, tmp_path
) -> None:
    planning, machine, finder = (
        setup_modules.planning,
        setup_modules.machine,
        setup_modules.python_finder,
    )
    found = [
        finder.PythonInstall(Path("/x/python3.14"), (3, 14, 0), "x86_64"),
        finder.PythonInstall(Path("/x/python3.12"), (3, 12, 1), "x86_64"),
    ]
    asked = request(setup_modules, tmp_path, constraints)
    plan, base = planning.plan_environment(asked, machine.Machine(*LINUX_ARGS), lambda: found)
    assert base == found[1] and plan.base_python == Path("/x/python3.12")


def test_windows_refuses_a_folder_too_deep_before_probing_anything(
    setup_modules, constraints, tmp_path
) -> None:
    planning, machine = setup_modules.planning, setup_modules.machine
    deep = setup_modules.planning.SetupRequest(
        env_dir=Path("C:/Users/artist/" + "nested/" * 20 + "backend-env"),
        requirements=("torch>=2.4",),
        constraints=constraints,
    )
    windows = machine.Machine("Windows", "x86_64", long_paths_enabled=False)
    with pytest.raises(setup_modules.path_limits.PathTooLong, match="too long for Windows"):
        planning.plan_environment(deep, windows, no_search)
    on = machine.Machine("Windows", "x86_64", long_paths_enabled=True, cuda_version=(12, 8))
    found = [setup_modules.python_finder.PythonInstall(Path("C:/Python312/python.exe"), (3, 12, 0))]
    plan, _ = planning.plan_environment(deep, on, lambda: found)
    assert plan.torch.kind == "cuda"
    assert plan.python == deep.env_dir / "Scripts" / "python.exe"


def test_an_intel_mac_is_refused_before_probing_anything(
    setup_modules, constraints, tmp_path
) -> None:
    planning, machine = setup_modules.planning, setup_modules.machine
    asked = request(setup_modules, tmp_path, constraints)
    with pytest.raises(setup_modules.torch_build.NoTorchBuild):
        planning.plan_environment(asked, machine.Machine("Darwin", "x86_64"), no_search)


def test_a_picked_intel_python_on_apple_silicon_is_refused(
    setup_modules, constraints, tmp_path
) -> None:
    planning, machine = setup_modules.planning, setup_modules.machine
    python = python_of_version(tmp_path / "rosetta", "3.12.4", machine="x86_64")
    asked = request(setup_modules, tmp_path, constraints, python)
    with pytest.raises(setup_modules.python_finder.PythonNotUsable, match="Rosetta"):
        planning.plan_environment(asked, machine.Machine("Darwin", "arm64"), no_search)
    native = python_of_version(tmp_path / "native", "3.12.4", machine="arm64")
    plan, _ = planning.plan_environment(
        request(setup_modules, tmp_path, constraints, native),
        machine.Machine("Darwin", "arm64"),
        no_search,
    )
    assert plan.torch.kind == "mps"


def test_a_cuda_index_without_the_pinned_torch_is_explained(setup_modules) -> None:
    environment, machine = setup_modules.environment, setup_modules.machine
    old_driver = setup_modules.torch_build.choose_torch_build(
        machine.Machine("Linux", "x86_64", cuda_version=(12, 4))
    )
    explain = environment.explain_torch_failure(old_driver)
    output = [
        "Looking in indexes: https://download.pytorch.org/whl/cu124",
        "ERROR: Could not find a version that satisfies the requirement torch==2.13.0",
        "ERROR: No matching distribution found for torch==2.13.0",
    ]
    text = explain(output)
    assert "cu124" in text and "torch==2.13.0" in text and "NVIDIA driver" in text
    assert explain(["ERROR: Could not install packages due to an OSError: disk full"]) is None
    cpu = setup_modules.torch_build.choose_torch_build(machine.Machine(*LINUX_ARGS))
    assert environment.explain_torch_failure(cpu)(output) is None


@pytest.mark.parametrize(
    ("running", "busy", "python", "action"),
    [
        (False, False, "env/bin/python", "keep"),
        (True, False, "env/bin/python", "stop"),
        (True, True, "env/bin/python", "wait"),
        (True, True, "elsewhere/bin/python", "keep"),
        (True, False, None, "keep"),
    ],
)
def test_what_happens_to_the_worker_before_setup(
    setup_modules, tmp_path, running, busy, python, action
) -> None:
    planning = setup_modules.planning
    worker_python = tmp_path / python if python else None
    chosen = planning.worker_action(running, busy, worker_python, tmp_path / "env")
    assert chosen.value == action
