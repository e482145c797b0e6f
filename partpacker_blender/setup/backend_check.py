"""The backend check: the backend's own `doctor --json`, run as a setup step (without blocking
Blender: it imports torch), and its last report, which the preferences show."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..child_process import backend_environment
from ..client import WorkerSettings
from ..settings import worker_settings
from . import state
from .runner import Step


@dataclass(frozen=True)
class Finding:
    ok: bool
    text: str
    hint: str = ""


@dataclass(frozen=True)
class DoctorReport:
    ok: bool
    findings: list[Finding] = field(default_factory=list)

    def finding_about(self, filename: str) -> Finding | None:
        """The first finding that names `filename` (a weight file)."""
        return next((finding for finding in self.findings if filename in finding.text), None)


class BackendCheck:
    def __init__(self) -> None:
        self.report: DoctorReport | None = None
        """The last check's findings; None before the first one."""
        self.checked_command: list[str] | None = None
        """The doctor's command of that report: the Python, weights and device it is about."""

    def start(self, python: Path) -> None:
        """Run the doctor with `python` and the preferences' weights and device. Raises
        problems.Problem while another setup step runs."""
        state.current().start([self.step(dataclasses.replace(worker_settings(), python=python))])

    def step(self, settings: WorkerSettings) -> Step:
        """The doctor as a setup step; its report becomes `report`. No bpy: planning may call it."""

        command = doctor_command(settings)

        def keep_report(exit_code: int, stdout: list[str], output: list[str]) -> None:
            self.report = parse_doctor_output(exit_code, "\n".join(stdout), "\n".join(output))
            self.checked_command = command

        return Step(
            "Check the backend",
            command,
            check_exit=keep_report,
            cwd=settings.backend_root,
            env=backend_environment(settings.backend_root, settings.env),
        )


def doctor_command(settings: WorkerSettings) -> list[str]:
    """`serve`'s command with `doctor --json` in its place: same Python, weights and device."""
    serve = settings.command()
    index = serve.index("serve")
    return [*serve[:index], "doctor", "--json", *serve[index + 1 :]]


def parse_doctor_output(exit_code: int, stdout: str, stderr: str = "") -> DoctorReport:
    """The doctor's JSON report (backend/doctor.py: ok, environment, device, checks); its exit
    code says whether generation can run."""
    try:
        report = json.loads(stdout)
        checks = [_finding(check) for check in report["checks"]]
        summary = _summary(report.get("environment", {}), report.get("device", {}))
    except (ValueError, KeyError, TypeError, AttributeError):
        return DoctorReport(False, [_failure(stderr)])
    return DoctorReport(exit_code == 0 and bool(report.get("ok")), [summary, *checks])


def _failure(stderr: str) -> Finding:
    """A check that wrote no report: the backend's `error:` and `hint:` lines when it wrote
    them (a Python without the backend's packages does), else its last line."""
    lines = stderr.strip().splitlines() or ["no report"]
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    hints = [line.removeprefix("hint: ") for line in lines if line.startswith("hint: ")]
    text = errors[-1] if errors else lines[-1]
    return Finding(False, f"the backend check failed: {text}", hints[-1] if hints else "")


def _finding(check: dict[str, Any]) -> Finding:
    return Finding(bool(check["ok"]), f"{check['name']}: {check['message']}", check.get("hint", ""))


def _summary(environment: dict[str, Any], device: dict[str, Any]) -> Finding:
    versions = ", ".join(
        f"{name} {environment[name]}"
        for name in ("backend", "python", "torch")
        if name in environment
    )
    return Finding(True, f"{versions}; device {device.get('device_name', 'unknown')}")


_CHECK = BackendCheck()


def current() -> BackendCheck:
    return _CHECK
