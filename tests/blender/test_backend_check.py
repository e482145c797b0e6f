"""The "Check Backend" button runs the real `python -m backend doctor --json`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import bpy
import pytest


@pytest.fixture
def check(addon):
    """setup/backend_check.py: runs the check and keeps its report."""
    return addon.setup.backend_check


def test_check_backend_with_the_tiny_weights_says_generation_can_run(check, backend):
    assert bpy.ops.partpacker.check_backend() == {"FINISHED"}
    report = check.current().report
    assert report.ok
    texts = [finding.text for finding in report.findings]
    assert any(text.startswith("weights flow.pt:") for text in texts)
    assert any("device CPU" in text for text in texts)
    assert all(finding.ok for finding in report.findings)


def test_check_backend_names_missing_weights_and_what_to_do(check, backend, prefs, tmp_path):
    prefs.weights_dir = str(tmp_path)
    assert bpy.ops.partpacker.check_backend() == {"FINISHED"}
    report = check.current().report
    assert not report.ok
    (weights,) = [f for f in report.findings if f.text.startswith("weights:")]
    assert not weights.ok
    assert "flow.pt" in weights.text
    assert weights.hint


def test_a_report_that_is_not_json_is_a_failed_check(check):
    report = check.parse_doctor_output(1, "", "Traceback...\nImportError: torch")
    assert not report.ok
    assert report.findings[0].text == "the backend check failed: ImportError: torch"


def test_a_python_without_the_backends_packages_is_told_to_set_up_the_backend(
    check, backend, prefs, tmp_path
):
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", tmp_path / "bare"], check=True)
    prefs.backend_python = str(tmp_path / "bare" / "bin" / "python")
    assert Path(prefs.backend_python).is_file()
    assert bpy.ops.partpacker.check_backend() == {"FINISHED"}
    report = check.current().report
    assert not report.ok
    (finding,) = report.findings
    assert "lacks the backend's packages" in finding.text
    assert "bug" not in finding.text
    assert finding.hint.startswith("set up the backend")
