"""`batch` on one machine: a folder of images through one in-process pipeline (no Ray), as a
function and as `python -m backend batch`. The fleet's batch is in test_fleet.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from backend.cli import main
from backend.errors import DeviceOutOfMemoryError
from backend.export import read_npz
from backend.fleet.batch import SUMMARY_NAME, job_folders, run_batch
from backend.params import GenerationParams
from backend.pipeline import PartPackerPipeline

REPO = Path(__file__).resolve().parents[3]
ROBOT = REPO / "examples" / "robot.png"
QUICK = GenerationParams(steps=2, grid_res=16, seed=5, randomize_seed=False)
QUICK_FLAGS = ["--steps", "2", "--grid-res", "16", "--seed", "5"]


def image_folder(root: Path) -> Path:
    """Two good images, one that only looks like an image, and a file that is no image."""
    folder = root / "images"
    folder.mkdir()
    shutil.copy(ROBOT, folder / "robot.png")
    shutil.copy(ROBOT, folder / "robot_copy.png")
    (folder / "broken.png").write_bytes(b"not a PNG at all")
    (folder / "notes.txt").write_text("not an image")
    return folder


def images_of(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if path.suffix == ".png")


def read_summary(output: Path) -> dict[str, Any]:
    summary = json.loads((output / SUMMARY_NAME).read_text())
    summary["by_name"] = {Path(entry["image"]).name: entry for entry in summary["images"]}
    return summary


def test_every_image_gets_a_job_folder_or_an_error_in_the_summary(
    tiny_pipeline: PartPackerPipeline, tmp_path: Path
) -> None:
    folder, output = image_folder(tmp_path), tmp_path / "out"
    heard: list[str] = []
    run_batch(
        images_of(folder),
        output,
        tiny_pipeline,
        QUICK,
        on_result=lambda result: heard.append(Path(result.image).name),
    )
    summary = read_summary(output)
    assert (summary["done"], summary["skipped"], summary["failed"]) == (2, 0, 1)
    assert sorted(heard) == ["broken.png", "robot.png", "robot_copy.png"]
    for name in ("robot.png", "robot_copy.png"):
        entry = summary["by_name"][name]
        job = output / entry["output_dir"]
        assert entry["status"] == "done" and entry["attempts"] == 1 and entry["seed"] == 5
        assert entry["parts"] == len(read_npz(job / "parts.npz")) >= 1
        assert json.loads((job / "result.json").read_text())["seed"] == 5
    broken = summary["by_name"]["broken.png"]
    assert broken["status"] == "failed" and broken["attempts"] == 2
    assert broken["error"]["code"] == "bad_input"
    assert "broken.png" in broken["error"]["message"] and broken["error"]["hint"]
    assert not (output / "broken").exists(), "a failed image leaves no job folder"
    assert "notes.txt" not in summary["by_name"]


def test_a_second_run_skips_done_images_and_tries_the_failed_ones_again(
    tiny_pipeline: PartPackerPipeline, tmp_path: Path
) -> None:
    folder, output = image_folder(tmp_path), tmp_path / "out"
    run_batch(images_of(folder), output, tiny_pipeline, QUICK)
    first_result = (output / "robot" / "result.json").stat().st_mtime_ns
    shutil.copy(ROBOT, folder / "broken.png")  # the artist fixes the broken image
    run_batch(images_of(folder), output, tiny_pipeline, QUICK)
    summary = read_summary(output)
    assert (summary["done"], summary["skipped"], summary["failed"]) == (1, 2, 0)
    assert summary["by_name"]["robot.png"]["status"] == "skipped"
    assert summary["by_name"]["broken.png"]["status"] == "done"
    assert (output / "robot" / "result.json").stat().st_mtime_ns == first_result
    assert read_npz(output / "broken" / "parts.npz")


class OutOfMemoryOnce:
    """The pipeline, but its first job ends as a GPU out of memory would (a transient failure
    this CPU machine cannot have)."""

    def __init__(self, pipeline: PartPackerPipeline) -> None:
        self.pipeline = pipeline
        self.seeds: list[int] = []

    def generate(self, image: Path, output_dir: Path, params: GenerationParams, **hooks: Any):
        self.seeds.append(params.seed)
        if len(self.seeds) == 1:
            raise DeviceOutOfMemoryError("the GPU ran out of memory", "lower the grid resolution")
        return self.pipeline.generate(image, output_dir, params, **hooks)


def test_a_failed_image_is_tried_once_more_with_the_same_seed(
    tiny_pipeline: PartPackerPipeline, tmp_path: Path
) -> None:
    runner = OutOfMemoryOnce(tiny_pipeline)
    params = GenerationParams(steps=2, grid_res=16, randomize_seed=True)
    run_batch([ROBOT], tmp_path / "out", runner, params)
    entry = read_summary(tmp_path / "out")["by_name"]["robot.png"]
    assert entry["status"] == "done" and entry["attempts"] == 2
    assert len(runner.seeds) == 2 and runner.seeds[0] == runner.seeds[1] == entry["seed"]


def test_images_sharing_a_name_get_folders_named_with_their_suffix(tmp_path: Path) -> None:
    images = [tmp_path / "chair.png", tmp_path / "chair.jpg", tmp_path / "lamp.png"]
    folders = job_folders(images, tmp_path / "out")
    assert [folder.name for folder in folders.values()] == ["chair.png", "chair.jpg", "lamp"]


def run_backend(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "backend", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_batch_command_reports_each_failure_and_exits_1(
    tiny_flags: list[str], tmp_path: Path
) -> None:
    folder, output = image_folder(tmp_path), tmp_path / "out"
    completed = run_backend("batch", folder, "-o", output, *tiny_flags, *QUICK_FLAGS)
    assert completed.returncode == 1, completed.stderr
    assert "2 done, 0 done before and skipped, 1 failed" in completed.stdout
    assert "broken.png is not an image file" in completed.stdout
    assert "ray" not in completed.stderr.lower(), "the local batch starts no Ray"
    summary = read_summary(output)
    assert summary["by_name"]["robot.png"]["status"] == "done"


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["--jobs", "2"], "--jobs only works with --fleet"),
        (["--replicas", "2", "--max-replicas", "3"], "--replicas, --max-replicas only work with"),
        (["--jobs", "0", "--fleet", "local"], "less than 1"),
    ],
)
def test_fleet_options_without_a_fleet_are_bad_input(
    arguments: list[str], words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = image_folder(tmp_path)
    assert main(["batch", str(folder), "-o", str(tmp_path / "out"), *arguments]) == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_web_server_s_fleet_options_need_a_fleet(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["web", "--replicas", "2"]) == 2
    assert "--replicas only works with --fleet" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("127.0.0.1:1", "no Ray cluster answers at 127.0.0.1:1"),
        ("head-machine", "'head-machine' is not a cluster address"),
    ],
)
def test_a_fleet_address_where_no_cluster_answers_is_bad_input_at_once(
    address: str, words: str, tmp_path: Path
) -> None:
    folder = image_folder(tmp_path)
    completed = run_backend("batch", folder, "-o", tmp_path / "out", "--fleet", address)
    assert completed.returncode == 2, completed.stderr
    assert words in completed.stderr
    assert "ray start --head" in completed.stderr or "HOST:PORT" in completed.stderr


def test_a_folder_without_images_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("no images here")
    assert main(["batch", str(tmp_path), "-o", str(tmp_path / "out")]) == 2
    assert "holds no image files" in capsys.readouterr().err
