"""Running the backend's `doctor --json` and turning its findings into lines for the UI."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from typing import Any

from .client import BackendUnavailable, WorkerSettings
from .client.backend import check_backend_files
from .client.process import child_environment

DOCTOR_TIMEOUT = 180.0


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


def run_doctor(settings: WorkerSettings) -> DoctorReport:
    check_backend_files(settings)
    try:
        completed = subprocess.run(
            doctor_command(settings),
            cwd=settings.backend_root,
            env=child_environment(settings.backend_root, settings.env),
            capture_output=True,
            text=True,
            timeout=DOCTOR_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BackendUnavailable(f"the backend check could not run: {error}") from error
    return parse_doctor_output(completed.returncode, completed.stdout, completed.stderr)


def parse_doctor_output(exit_code: int, stdout: str, stderr: str = "") -> DoctorReport:
    """The doctor's JSON report; its exit code says whether generation can run."""
    try:
        report = json.loads(stdout)
    except ValueError:
        last_line = (stderr.strip().splitlines() or ["no output"])[-1]
        return DoctorReport(False, [Finding(False, f"the backend check failed: {last_line}")])
    findings = _findings(report)
    if exit_code != 0 and all(finding.ok for finding in findings):
        findings.append(Finding(False, f"the backend check exited with code {exit_code}"))
    return DoctorReport(exit_code == 0, findings)


def _findings(report: Any) -> list[Finding]:
    if not isinstance(report, dict):
        return [Finding(False, f"unexpected doctor report: {str(report)[:200]}")]
    findings = []
    for key, value in report.items():
        if isinstance(value, list):
            findings += [_finding(item) for item in value]
        elif isinstance(value, dict):
            summary = ", ".join(f"{k} {v}" for k, v in value.items() if not isinstance(v, dict))
            findings.append(Finding(True, f"{key}: {summary}"))
        elif key != "ok":
            findings.append(Finding(True, f"{key}: {value}"))
    return findings


def _finding(item: Any) -> Finding:
    if not isinstance(item, dict):
        return Finding(False, str(item))
    text = item.get("message") or item.get("name") or item.get("problem") or json.dumps(item)
    hint = item.get("hint") or item.get("fix") or ""
    return Finding(bool(item.get("ok", False)), str(text), str(hint))
