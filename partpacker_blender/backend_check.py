"""The backend's `doctor --json`: its command line, and its findings as lines for the UI.
(setup/operators.py `start_check` runs it without blocking Blender.)"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .client import WorkerSettings


@dataclass(frozen=True)
class Finding:
    ok: bool
    text: str
    hint: str = ""


@dataclass(frozen=True)
class DoctorReport:
    ok: bool
    findings: list[Finding] = field(default_factory=list)


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
        last_line = (stderr.strip().splitlines() or ["no report"])[-1]
        return DoctorReport(False, [Finding(False, f"the backend check failed: {last_line}")])
    return DoctorReport(exit_code == 0 and bool(report.get("ok")), [summary, *checks])


def _finding(check: dict[str, Any]) -> Finding:
    return Finding(bool(check["ok"]), f"{check['name']}: {check['message']}", check.get("hint", ""))


def _summary(environment: dict[str, Any], device: dict[str, Any]) -> Finding:
    versions = ", ".join(
        f"{name} {environment[name]}"
        for name in ("backend", "python", "torch")
        if name in environment
    )
    return Finding(True, f"{versions}; device {device.get('device_name', 'unknown')}")
