"""Setup's decisions for machines this suite cannot run on, from the facts machine.py reads: Intel
Macs, Intel Pythons under Rosetta, the Command Line Tools' python3 stub, 32-bit Pythons, Windows'
path limit. Each decision is a plain function of plain inputs, tested with those inputs; the
readers themselves are tested where they can run (this Linux machine)."""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
from pathlib import Path, PureWindowsPath

import pytest
from helpers import fake_python

DEFAULT_WINDOWS_ENV = PureWindowsPath(
    r"C:\Users\artist\AppData\Roaming\Blender Foundation\Blender\4.2\extensions\.user"
    r"\user_default\partpacker\backend-env"
)
"""Where Set Up Backend puts the environment on Windows unless told otherwise."""


@pytest.fixture
def machine(setup_modules):
    return setup_modules.machine


def python_reporting(folder: Path, version: list[int], machine: str, bits: int = 64) -> Path:
    report = {"version": version, "executable": str(folder / "python"), "machine": machine}
    return fake_python(folder, f"echo '{json.dumps({**report, 'bits': bits})}'")


# --- The machine's architecture ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("system", "process", "translated", "hardware"),
    [
        ("Darwin", "x86_64", True, "arm64"),  # Blender's Intel build under Rosetta
        ("Darwin", "arm64", False, "arm64"),
        ("Darwin", "x86_64", False, "x86_64"),  # an Intel Mac
        ("Windows", "AMD64", False, "x86_64"),
        ("Linux", "aarch64", False, "arm64"),
        ("Linux", "x86_64", True, "x86_64"),  # Rosetta is a macOS matter only
    ],
)
def test_the_hardware_architecture_sees_through_rosetta(
    machine, system, process, translated, hardware
) -> None:
    assert machine.hardware_architecture(system, process, translated) == hardware


@pytest.mark.parametrize(
    ("release", "version"),
    [("13.6.1", (13, 6)), ("14.0", (14, 0)), ("10.16", (10, 16)), ("", None)],
)
def test_the_macos_release_is_read_as_major_and_minor(machine, release, version) -> None:
    assert machine.parse_macos_version(release) == version


def test_this_machine_is_read_as_it_is(machine) -> None:
    read = machine.read_machine()
    assert read.system == platform.system() == "Linux"
    assert read.architecture == machine.architecture_name(platform.machine())
    assert read.long_paths_enabled is None and read.developer_tools
    assert read.macos_version is None and not read.rosetta
    smi = shutil.which("nvidia-smi")
    assert (read.cuda_version is None) == (smi is None), "no NVIDIA driver here, or one is read"


# --- Which PyTorch on a Mac ----------------------------------------------------------------------


def test_an_intel_mac_gets_no_torch_build_and_is_told_why(setup_modules, machine) -> None:
    torch_build = setup_modules.torch_build
    with pytest.raises(torch_build.NoTorchBuild, match="Intel Macs") as refused:
        torch_build.choose_torch_build(machine.Machine("Darwin", "x86_64"))
    assert "2.4" in refused.value.message and "Apple silicon" in refused.value.hint
    apple = torch_build.choose_torch_build(machine.Machine("Darwin", "arm64"))
    assert (apple.kind, apple.index_url) == ("mps", None)


# --- Which Python on a Mac, and which not --------------------------------------------------------


def test_the_probe_reports_the_architecture_python_runs_as(setup_modules, backend_python) -> None:
    finder, machine = setup_modules.python_finder, setup_modules.machine
    found = finder.check_python(backend_python)
    assert found.architecture == machine.architecture_name(platform.machine())
    assert found.bits == 64


def test_an_intel_python_under_rosetta_is_refused(setup_modules, machine, tmp_path) -> None:
    finder = setup_modules.python_finder
    intel = finder.check_python(python_reporting(tmp_path, [3, 12, 4], "x86_64"))
    assert intel.architecture == "x86_64"
    apple_silicon = machine.Machine("Darwin", "arm64")
    refused = finder.architecture_problem(intel, apple_silicon)
    assert refused is not None and "Rosetta" in refused.message and "python.org" in refused.hint
    assert finder.architecture_problem(intel, machine.Machine("Darwin", "x86_64")) is None
    native = finder.PythonInstall(Path("/opt/homebrew/bin/python3.12"), (3, 12, 4), "arm64")
    assert finder.architecture_problem(native, apple_silicon) is None


def test_an_intel_blender_on_apple_silicon_is_named_as_the_cause(setup_modules, machine) -> None:
    """Blender's Intel build runs under Rosetta and starts even a universal Python as Intel
    code: installing another Python would not help, Blender for Apple silicon does."""
    finder = setup_modules.python_finder
    universal = finder.PythonInstall(Path("/usr/local/bin/python3.12"), (3, 12, 4), "x86_64")
    under_rosetta = machine.Machine("Darwin", "arm64", rosetta=True)
    refused = finder.architecture_problem(universal, under_rosetta)
    assert refused is not None and "Blender for Apple silicon" in refused.hint


def test_a_32_bit_python_is_refused_everywhere(setup_modules, machine, tmp_path) -> None:
    finder = setup_modules.python_finder
    old_style = finder.check_python(python_reporting(tmp_path, [3, 12, 0], "AMD64", bits=32))
    refused = finder.architecture_problem(old_style, machine.Machine("Windows", "x86_64"))
    assert refused is not None and "64-bit" in refused.message


def test_the_choice_skips_unfit_pythons_or_says_why_none_fits(setup_modules, machine) -> None:
    finder = setup_modules.python_finder
    apple_silicon = machine.Machine("Darwin", "arm64")
    rosetta = finder.PythonInstall(Path("/usr/local/bin/python3.13"), (3, 13, 1), "x86_64")
    native = finder.PythonInstall(Path("/opt/homebrew/bin/python3.11"), (3, 11, 9), "arm64")
    assert finder.choose_python([rosetta, native], apple_silicon) == native
    with pytest.raises(finder.PythonNotUsable, match="Rosetta"):
        finder.choose_python([rosetta], apple_silicon)


def test_pythons_the_pinned_versions_run_on_come_first(setup_modules, machine) -> None:
    finder = setup_modules.python_finder
    linux = machine.Machine("Linux", "x86_64")
    py310 = finder.PythonInstall(Path("/usr/bin/python3.10"), (3, 10, 12), "x86_64")
    py312 = finder.PythonInstall(Path("/usr/bin/python3.12"), (3, 12, 3), "x86_64")
    py314 = finder.PythonInstall(Path("/usr/bin/python3.14"), (3, 14, 0), "x86_64")
    assert finder.choose_python([py314, py312, py310], linux, tested_from=(3, 11)) == py312
    assert finder.choose_python([py314, py310], linux, tested_from=(3, 11)) == py310
    assert finder.choose_python([py310], linux, tested_from=(3, 11)) == py310


@pytest.mark.parametrize(
    ("path", "system", "developer_tools", "stub"),
    [
        ("/usr/bin/python3", "Darwin", False, True),
        ("/usr/bin/python3", "Darwin", True, False),
        ("/opt/homebrew/bin/python3", "Darwin", False, False),
        ("/Library/Frameworks/Python.framework/Versions/3.12/bin/python3", "Darwin", False, False),
        ("/usr/bin/python3", "Linux", False, False),
    ],
)
def test_the_command_line_tools_stub_is_recognised(
    setup_modules, machine, path, system, developer_tools, stub
) -> None:
    facts = machine.Machine(system, "arm64", developer_tools=developer_tools)
    assert setup_modules.python_finder.is_developer_tools_stub(Path(path), facts) is stub


def test_the_stub_is_never_among_the_pythons_probed(setup_modules, machine, monkeypatch) -> None:
    """With the PATH a Mac gives programs started from the Finder, this machine finds
    /usr/bin/python3: as a Mac without the Command Line Tools it is left out of the candidates,
    as a Linux PC it is probed."""
    assert Path("/usr/bin/python3").is_file()
    monkeypatch.setenv("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
    finder = setup_modules.python_finder
    mac_commands = finder.candidate_commands(
        machine.Machine("Darwin", "arm64", developer_tools=False)
    )
    linux_commands = finder.candidate_commands(machine.Machine("Linux", "x86_64"))
    assert ["/usr/bin/python3"] in linux_commands
    assert ["/usr/bin/python3"] not in mac_commands
    assert [c for c in mac_commands if c[0].startswith("/usr/bin/python")] == []


# --- Windows' path limit -------------------------------------------------------------------------


def test_the_default_windows_folder_is_too_long_without_long_paths(setup_modules, machine) -> None:
    limits = setup_modules.path_limits
    windows = machine.Machine("Windows", "x86_64", long_paths_enabled=False)
    too_long = limits.environment_path_problem(DEFAULT_WINDOWS_ENV, windows)
    assert too_long is not None
    deepest = limits.deepest_path_length(DEFAULT_WINDOWS_ENV)
    site_packages = "\\Lib\\site-packages\\"
    assert (
        deepest == len(str(DEFAULT_WINDOWS_ENV)) + len(site_packages) + limits.DEEPEST_PACKAGE_FILE
    )
    assert str(DEFAULT_WINDOWS_ENV) in too_long.message and str(deepest) in too_long.message
    assert "Environment Folder" in too_long.hint and "LongPathsEnabled" in too_long.hint
    with_long_paths = machine.Machine("Windows", "x86_64", long_paths_enabled=True)
    assert limits.environment_path_problem(DEFAULT_WINDOWS_ENV, with_long_paths) is None


@pytest.mark.parametrize(
    ("folder", "fits"),
    [("C:\\PartPacker\\backend-env", True), ("D:\\" + "x" * 60 + "\\backend-env", False)],
)
def test_a_short_windows_folder_fits(setup_modules, machine, folder, fits) -> None:
    windows = machine.Machine("Windows", "x86_64", long_paths_enabled=False)
    problem = setup_modules.path_limits.environment_path_problem(PureWindowsPath(folder), windows)
    assert (problem is None) is fits


def test_other_systems_have_no_such_limit(setup_modules, machine) -> None:
    limits = setup_modules.path_limits
    for system in ("Linux", "Darwin"):
        assert (
            limits.environment_path_problem(DEFAULT_WINDOWS_ENV, machine.Machine(system, "arm64"))
            is None
        )


DEEPEST_FILE = """
import json, sys
from importlib import metadata
names = json.loads(sys.argv[1])
deepest = ""
for name in names:
    for file in metadata.distribution(name).files or []:
        path = file.as_posix()
        if path.startswith(".."):
            continue
        if path.endswith(".py"):  # pip compiles each into __pycache__
            folder, _, stem = path[:-3].rpartition("/")
            path = f"{folder}/__pycache__/{stem}.cpython-313.pyc".lstrip("/")
        deepest = max(deepest, path, key=len)
print(deepest)
"""


def test_the_deepest_path_estimate_covers_the_backends_packages(
    setup_modules, backend_python: Path
) -> None:
    """Measured in the backend environment this suite runs with: every file the pinned packages
    installed (and the bytecode pip writes beside each module) inside site-packages."""
    from addon_setup import REPO_ROOT

    pins = (REPO_ROOT / "constraints.txt").read_text().splitlines()
    names = [line.split("==")[0] for line in pins if "==" in line]
    completed = subprocess.run(
        [str(backend_python), "-c", DEEPEST_FILE, json.dumps(names)],
        capture_output=True,
        text=True,
        check=True,
    )
    deepest = completed.stdout.strip()
    assert len(deepest) > 100, deepest
    assert len(deepest) <= setup_modules.path_limits.DEEPEST_PACKAGE_FILE, deepest
