"""The Gradio app: the public Space's three API functions, name for name, and a page like its demo.

    build_app(runner, options, work) -> gr.Blocks

Every job goes through `runner` (runner.py): PartPackerPipeline here, a Ray-backed runner for a
fleet. process_3d and process_image each wait in Gradio's queue (bounded by --max-queue);
process_3d runs `options.concurrency` at a time, one per GPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from ..errors import Cancelled, PartPackerError
from ..params import GenerationParams
from ..pipeline import ProgressCallback
from .jobs import CancelFlags, gradio_progress, run_cancellable
from .options import ServerOptions
from .runner import JobRunner
from .space_api import CHECKBOXES, LABELS, SLIDERS, check_switch, generation_params
from .storage import WorkFolder
from .uploads import checked_upload

log = logging.getLogger(__name__)

INTRO = """# PartPacker
One image in, a 3D model already split into parts out. Upload a picture of one object: its
segmentation appears below it. Set the parameters and press **Generate**; the parts show in the
viewer on the right, each in its own colour, and the GLB is yours to download."""


class SpaceFunctions:
    """process_image, get_random_seed and process_3d with the Space's parameter names."""

    def __init__(
        self, runner: JobRunner, options: ServerOptions, work: WorkFolder, flags: CancelFlags
    ) -> None:
        self.runner = runner
        self.options = options
        self.work = work
        self.cancel_flags = flags

    async def process_image(self, image_path: str | None) -> str:
        with user_errors("process_image"):
            image = checked_upload(image_path, self.work.root, self.options.max_pixels)
            with self.work.job("prepare") as folder:
                preview = folder / "preview.png"
                # seconds of work: a client's cancel ends the request, the thread finishes
                await asyncio.to_thread(self.runner.prepare, image, preview)
                return str(preview)

    def get_random_seed(self, randomize_seed: bool, seed: float) -> int:
        with user_errors("get_random_seed"):
            randomize = check_switch("randomize_seed", randomize_seed)
            given = int(SLIDERS["seed"].check("seed", seed))
            return GenerationParams(seed=given, randomize_seed=randomize).with_resolved_seed().seed

    async def process_3d(
        self,
        input_image: str | None,
        num_steps: float,
        cfg_scale: float,
        grid_res: float,
        seed: float,
        simplify_mesh: bool,
        target_num_faces: float,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio's way to ask for one)
    ) -> str:
        values = {
            "num_steps": num_steps,
            "cfg_scale": cfg_scale,
            "grid_res": grid_res,
            "seed": seed,
            "simplify_mesh": simplify_mesh,
            "target_num_faces": target_num_faces,
        }
        with user_errors("process_3d"):
            params, asked = generation_params(values, self.options.grid_res_cap)
            if asked is not None:
                gr.Warning(
                    f"This server decodes at most at grid {params.grid_res} "
                    f"(its --grid-res-cap): grid_res {asked} was lowered to it."
                )
            image = checked_upload(input_image, self.work.root, self.options.max_pixels)
            with (
                self.work.job("generate") as folder,
                self.cancel_flags.flag(request.session_hash) as cancel,
            ):
                return await self._generate(
                    image, folder, params, gradio_progress(progress), cancel
                )

    async def _generate(
        self,
        image: Path,
        folder: Path,
        params: GenerationParams,
        on_progress: ProgressCallback,
        cancel: threading.Event,
    ) -> str:
        started = time.perf_counter()
        log.info("job %s: started (%s)", folder.name, params)
        try:
            result = await run_cancellable(
                lambda: self.runner.generate(image, folder, params, on_progress, cancel.is_set),
                cancel,
            )
        except asyncio.CancelledError:
            log.info("job %s: cancelled by its client", folder.name)
            raise
        except Cancelled:
            log.info("job %s: cancelled: its page or client left, or the server stops", folder.name)
            raise
        seconds = time.perf_counter() - started
        log.info("job %s: done in %.2f s, %d parts", folder.name, seconds, len(result.parts))
        return str(result.glb)

    def session_ended(self, request: gr.Request) -> None:
        cancelled = self.cancel_flags.cancel_session(request.session_hash)
        if cancelled:
            log.info("session ended: cancelling its %d running job(s)", cancelled)


@contextlib.contextmanager
def user_errors(endpoint: str) -> Iterator[None]:
    """Our errors as Gradio errors, which clients receive with their message; the error code is
    the title. A bug is logged with its traceback and reported without server details."""
    try:
        yield
    except PartPackerError as error:
        message = f"{error.message}. {error.hint}" if error.hint else error.message
        raise gr.Error(message, title=error.code, print_exception=False) from error
    except gr.Error:
        raise
    except Exception as error:
        log.exception("%s failed", endpoint)
        message = f"internal error ({type(error).__name__}); the server's log has the details"
        raise gr.Error(message, title="internal", print_exception=False) from error


def space_slider(name: str) -> gr.Slider:
    """A slider of the Space; a value out of its range is refused with the parameter's name
    (Gradio's own check says only 'Value 513 is greater than maximum value 512.')."""
    spec = SLIDERS[name]
    slider = gr.Slider(spec.low, spec.high, value=spec.default, step=spec.step, label=spec.label)
    gradio_preprocess = slider.preprocess

    def preprocess(payload: Any) -> Any:
        with user_errors(name):
            spec.check(name, payload)
        return gradio_preprocess(payload)

    slider.preprocess = preprocess  # type: ignore[method-assign]
    return slider


def space_checkbox(name: str) -> gr.Checkbox:
    label, default = CHECKBOXES[name]
    return gr.Checkbox(label=label, value=default)


def build_app(
    runner: JobRunner,
    options: ServerOptions,
    work: WorkFolder,
    cancel_flags: CancelFlags | None = None,
) -> gr.Blocks:
    """The page and the API, every job through `runner`; `cancel_flags` lets the caller cancel
    the running jobs (at shutdown). Build it after GRADIO_TEMP_DIR points at `work.root`."""
    functions = SpaceFunctions(runner, options, work, cancel_flags or CancelFlags())
    with gr.Blocks(title="PartPacker", analytics_enabled=False) as demo:
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column():
                input_image = gr.Image(
                    label=LABELS["image_path"], type="filepath", image_mode=None, height=320
                )
                segmentation = gr.Image(
                    label=LABELS["segmentation"],
                    type="filepath",
                    image_mode=None,
                    interactive=False,
                    height=320,
                )
                num_steps = space_slider("num_steps")
                cfg_scale = space_slider("cfg_scale")
                grid_res = space_slider("grid_res")
                with gr.Row():
                    randomize_seed = space_checkbox("randomize_seed")
                    seed = space_slider("seed")
                with gr.Row():
                    simplify_mesh = space_checkbox("simplify_mesh")
                    target_num_faces = space_slider("target_num_faces")
                generate = gr.Button("Generate", variant="primary")
            with gr.Column():
                geometry = gr.Model3D(label=LABELS["geometry"], height=560)
                download = gr.DownloadButton("Download GLB", interactive=False)
        input_image.upload(
            functions.process_image,
            input_image,
            segmentation,
            api_name="process_image",
            concurrency_id="prepare",
        )
        generate.click(
            functions.get_random_seed,
            [randomize_seed, seed],
            seed,
            api_name="get_random_seed",
            concurrency_limit=None,
        ).then(
            functions.process_3d,
            [segmentation, num_steps, cfg_scale, grid_res, seed, simplify_mesh, target_num_faces],
            geometry,
            api_name="process_3d",
            concurrency_id="generate",
            concurrency_limit=options.concurrency,
        ).success(
            lambda glb: gr.DownloadButton(value=glb, interactive=True),
            geometry,
            download,
            api_visibility="private",
        )
        demo.unload(functions.session_ended)
    demo.queue(max_size=options.max_queue, default_concurrency_limit=1)
    return demo
