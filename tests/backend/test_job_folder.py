"""A job folder holds one run's complete set: runs that fail, are cancelled or overlap never
leave files of one run beside another's result.json (tiny weights, the real pipeline)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backend.errors import Cancelled, OutputError
from backend.job_folder import JOB_FILES, building
from backend.params import GenerationParams
from backend.pipeline import PartPackerPipeline, Progress
from tests.backend.special_files import make_fifo

REPO = Path(__file__).resolve().parents[2]
ROBOT = REPO / "examples" / "robot.png"
QUICK = {"steps": 2, "grid_res": 16, "randomize_seed": False}


@pytest.fixture(scope="module")
def disc_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    yy, xx = np.mgrid[:200, :240]
    pixels = np.zeros((200, 240, 4), dtype=np.uint8)
    pixels[(yy - 100) ** 2 + (xx - 120) ** 2 < 60**2] = (30, 200, 30, 255)
    path = tmp_path_factory.mktemp("disc") / "disc.png"
    Image.fromarray(pixels).save(path)
    return path


def contents(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def cancel_at(stage: str) -> tuple[list[Progress], Callable[[], bool]]:
    """A progress log and a cancel check that turns true once `stage` has begun."""
    seen: list[Progress] = []
    return seen, lambda: any(progress.stage == stage for progress in seen)


def assert_one_runs_set(folder: Path, pipeline: PartPackerPipeline, image: Path, seed: int):
    """Every file of `folder` comes from the run of `image` with `seed` that wrote result.json."""
    assert {path.name for path in folder.iterdir()} == JOB_FILES
    record = json.loads((folder / "result.json").read_text())
    assert (record["image"], record["seed"]) == (str(image), seed)
    preview = np.asarray(Image.open(folder / "preview.png"))
    assert np.array_equal(preview, pipeline.preparer.prepare(image).rgba)
    with np.load(folder / "parts.npz") as npz:
        faces = np.diff(npz["face_offsets"]).tolist()
        names = npz["names"].tolist()
    assert faces == [part["faces"] for part in record["parts"]]
    assert names == [part["name"] for part in record["parts"]]


def test_a_cancelled_rerun_leaves_the_earlier_set_whole(
    tiny_pipeline: PartPackerPipeline, disc_image: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    tiny_pipeline.generate(ROBOT, out, GenerationParams(seed=1, **QUICK))
    before = contents(out)
    seen, cancelled = cancel_at("sample")
    with pytest.raises(Cancelled):
        tiny_pipeline.generate(
            disc_image, out, GenerationParams(seed=2, **QUICK), seen.append, cancelled
        )
    assert contents(out) == before
    assert [path.name for path in tmp_path.iterdir()] == ["out"]


def test_a_cancelled_first_run_leaves_no_folder_behind(
    tiny_pipeline: PartPackerPipeline, tmp_path: Path
) -> None:
    seen, cancelled = cancel_at("sample")
    with pytest.raises(Cancelled):
        tiny_pipeline.generate(
            ROBOT, tmp_path / "out", GenerationParams(**QUICK), seen.append, cancelled
        )
    assert "prepare" in {progress.stage for progress in seen}  # the preview was written
    assert list(tmp_path.iterdir()) == []


def test_two_overlapping_runs_into_one_folder_leave_the_later_ones_set(
    tiny_pipeline: PartPackerPipeline, disc_image: Path, tmp_path: Path
) -> None:
    """The first run writes its preview, waits while a second run does all its work into the
    same folder, then finishes: the folder is the first run's set, every file of it."""
    out = tmp_path / "out"
    second_done = threading.Event()
    outcome: list[BaseException | None] = []

    def wait_for_the_second(progress: Progress) -> None:
        if progress.stage == "sample" and progress.step == 0:
            assert second_done.wait(120)

    def first_run() -> None:
        try:
            params = GenerationParams(seed=1, **QUICK)
            tiny_pipeline.generate(ROBOT, out, params, on_progress=wait_for_the_second)
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)

    first = threading.Thread(target=first_run)
    first.start()
    try:
        tiny_pipeline.generate(disc_image, out, GenerationParams(seed=2, **QUICK))
        assert_one_runs_set(out, tiny_pipeline, disc_image, 2)
    finally:
        second_done.set()
        first.join(120)
    assert outcome == [None]
    assert_one_runs_set(out, tiny_pipeline, ROBOT, 1)
    assert [path.name for path in tmp_path.iterdir()] == ["out"]


def test_a_folder_with_other_files_is_refused_and_left_alone(
    tiny_pipeline: PartPackerPipeline, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"holds files that are not a job's \(notes.txt\)"):
        tiny_pipeline.generate(ROBOT, tmp_path, GenerationParams(**QUICK))
    assert contents(tmp_path) == {"notes.txt": b"mine"}


def test_an_output_folder_that_is_a_fifo_is_refused(
    tiny_pipeline: PartPackerPipeline, tmp_path: Path
) -> None:
    fifo = make_fifo(tmp_path, "out")
    with pytest.raises(OutputError, match=r"is a named pipe \(FIFO\)"):
        tiny_pipeline.generate(ROBOT, fifo, GenerationParams(**QUICK))
    assert fifo.is_fifo()


def test_many_sets_put_in_place_at_once_leave_exactly_one(tmp_path: Path) -> None:
    target = tmp_path / "job"
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def run(number: int) -> None:
        try:
            with building(target) as folder:
                for name in JOB_FILES:
                    folder.file(name).write_text(str(number))
                start.wait(30)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    written = set(contents(target).values())
    assert len(written) == 1 and set(contents(target)) == JOB_FILES
    assert [path.name for path in tmp_path.iterdir()] == ["job"]


def test_a_link_to_a_job_folder_stays_a_link(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    with building(link) as folder:
        folder.file("result.json").write_text("{}")
    assert link.is_symlink() and (real / "result.json").read_text() == "{}"
