"""Every image of a folder through a runner (one in-process pipeline, or the fleet), a job
folder each, and a summary of them all.

`OUT/<image name>/` is each image's job folder (the image's full file name where two images
share a stem) and `OUT/summary.json` the summary, rewritten after every image so that it is
current even when the batch is stopped. An image whose job folder holds a result.json (written
last) is done and skipped by the next run; a failed image is tried once more in the same run,
with the same seed. Nothing here imports Ray.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import BadInputError, CancelCheck, PartPackerError, describe_bug
from ..export import write_json
from ..job_folder import make_output_dir
from ..params import GenerationParams
from ..pipeline import GenerationResult, ProgressCallback

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset([".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"])
SUMMARY_NAME = "summary.json"
ATTEMPTS = 2
BUG_HINT = "run again with --verbose for the traceback, and please report it"


class Runner(Protocol):
    def generate(
        self,
        image: Path,
        output_dir: Path,
        params: GenerationParams | None = None,
        on_progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
    ) -> GenerationResult: ...


@dataclass
class ImageResult:
    """One line of the summary."""

    image: str
    output_dir: str
    status: str  # "done", "skipped" (done by an earlier run) or "failed"
    attempts: int = 0
    seconds: float | None = None
    seed: int | None = None
    parts: int | None = None
    replica: dict[str, Any] | None = None
    error: dict[str, str] | None = None


@dataclass
class Batch:
    output: Path
    params: GenerationParams
    results: dict[str, ImageResult] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, result: ImageResult) -> None:
        with self.lock:
            self.results[result.image] = result
            write_json(self.summary(), self.output / SUMMARY_NAME)

    def summary(self) -> dict[str, Any]:
        counts = Counter(result.status for result in self.results.values())
        return {
            "output": str(self.output),
            "params": self.params.to_dict(),
            **{status: counts[status] for status in ("done", "skipped", "failed")},
            "images": [asdict(self.results[name]) for name in sorted(self.results)],
        }


def find_images(folder: Path) -> list[Path]:
    """The folder's image files (not its subfolders'), by name."""
    if not folder.is_dir():
        raise BadInputError(f"{folder} is not a folder", "give the folder that holds the images")
    files = (path for path in folder.iterdir() if path.is_file())
    images = sorted(path for path in files if path.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise BadInputError(f"{folder} holds no image files", f"images end in {suffixes}")
    return images


def job_folders(images: list[Path], output: Path) -> dict[Path, Path]:
    stems = Counter(image.stem for image in images)
    return {
        image: output / (image.stem if stems[image.stem] == 1 else image.name) for image in images
    }


def run_batch(
    images: list[Path],
    output: Path,
    runner: Runner,
    params: GenerationParams,
    jobs: int = 1,
    on_result: Callable[[ImageResult], None] | None = None,
) -> Batch:
    """Run the images not yet done, `jobs` at a time; `on_result` hears of every image, the
    skipped ones first. Ctrl-C cancels the running jobs (each stops at its next check) and
    keeps what is done."""
    batch = Batch(make_output_dir(output), params)
    stop = threading.Event()

    def record(result: ImageResult) -> None:
        batch.record(result)
        if on_result is not None:
            on_result(result)

    pending = []
    for image, job_folder in job_folders(images, batch.output).items():
        if (job_folder / "result.json").is_file():
            record(ImageResult(str(image), job_folder.name, "skipped"))
        else:
            pending.append((image, job_folder))

    def run(image: Path, job_folder: Path) -> None:
        record(run_image(runner, image, job_folder, params, stop.is_set))

    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="partpacker-batch")
    try:
        for future in [pool.submit(run, image, job_folder) for image, job_folder in pending]:
            future.result()
    except BaseException:
        stop.set()  # the running jobs stop at their next check; the others never start
        raise
    finally:
        pool.shutdown(cancel_futures=True)
    return batch


def run_image(
    runner: Runner, image: Path, job_folder: Path, params: GenerationParams, stop: CancelCheck
) -> ImageResult:
    """Up to ATTEMPTS tries of one image; the result of the last."""
    params = params.with_resolved_seed()
    started = time.perf_counter()
    for attempt in range(1, ATTEMPTS + 1):
        try:
            result = runner.generate(image, job_folder, params, should_cancel=stop)
        except PartPackerError as error:
            if stop():
                raise
            failure = error
        except Exception as error:  # one image's bug must not end the batch
            log.error("internal error on %s:\n%s", image.name, traceback.format_exc())
            failure = describe_bug(error, BUG_HINT)
        else:
            return ImageResult(
                str(image),
                job_folder.name,
                "done",
                attempts=attempt,
                seconds=round(time.perf_counter() - started, 3),
                seed=result.seed,
                parts=len(result.parts),
                replica=replica_of(result),
            )
        log.warning("%s, attempt %d: %s", image.name, attempt, failure.message)
    return ImageResult(
        str(image),
        job_folder.name,
        "failed",
        attempts=ATTEMPTS,
        seconds=round(time.perf_counter() - started, 3),
        error={"code": failure.code, "message": failure.message, "hint": failure.hint},
    )


def replica_of(result: GenerationResult) -> dict[str, Any] | None:
    """Which fleet replica made the result (a FleetResult's); None in process."""
    replica = getattr(result, "replica", None)
    return asdict(replica) if replica is not None else None
