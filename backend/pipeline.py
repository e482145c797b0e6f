"""The whole generation, read as a recipe:
prepare → condition → sample → decode → extract → post-process → export."""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from . import __version__
from .decoding import (
    COARSE_TO_FINE,
    DEFAULT_CHUNK_SIZE,
    MIN_RESOLUTION,
    Field,
    grid_levels,
    vae_field,
    vae_fields,
)
from .device import Placement, choose_placement
from .errors import BadInputError, CancelCheck, Cancelled, DeviceOutOfMemoryError
from .export import write_glb, write_json, write_npz
from .image import BackgroundRemover, ImagePreparer, PreparedImage
from .job_folder import JobFolder, building
from .meshing import MeshOptions, extract_mesh, mesh_parts
from .models import VAE, DINOv2, DINOv2Config, DiT, DiTConfig, VAEConfig, normalize_image
from .params import GenerationParams
from .parts import Part, assemble_parts
from .sampling import DEFAULT_SHIFT, initial_noise, sample
from .weight_cache import load_weights_cached
from .weights import WeightFiles, load_weights, resolve_weights

log = logging.getLogger(__name__)

LOW_MEMORY_QUERY_BYTES = 2 << 30
"""Device memory for one VAE query chunk in low-memory mode."""


@dataclass(frozen=True)
class Progress:
    stage: str
    step: int
    total: int


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class PipelineSettings:
    weights_dir: Path | None = None
    weights_cache: Path | None = None
    """Folder for converted copies of the checkpoints (fast cold starts); None: no cache."""
    cache_dir: Path | None = None
    revision: str | None = None
    device: str = "auto"
    model_config: Path | None = None
    rembg_model: str = "u2net"
    rembg_model_path: Path | None = None
    low_memory: bool = False
    """Keep each network in host memory except while it runs (DINOv2, then the DiT, then the
    VAE), and bound the query chunks: the peak is about the largest network, ~3 GB in bf16,
    for some seconds of transfers per job."""
    decode_strategy: str = "surface"
    """"surface" (ours: the official decoder's mesh for under half its queries) or "hierarchical"
    (the official coarse-to-fine decoder, query for query)."""
    query_chunk_size: int | None = None
    """Points per VAE query; None sizes chunks from free device memory."""
    reuse_query_context: bool = True
    """Compute the query's keys and values once per volume (False: once per chunk, as official)."""
    decode_volumes_together: bool = True
    """Run the VAE's decoder over both volumes' latents as one batch (False: one after the other,
    as official)."""
    compile_dit: bool = False
    """Run the DiT through torch.compile: fused kernels for every later step, but the first job
    pays the compilation (tens of seconds, again for each new batch shape)."""

    def __post_init__(self) -> None:
        if self.decode_strategy not in COARSE_TO_FINE:
            raise BadInputError(
                f"unknown decode strategy {self.decode_strategy!r}",
                f"choose one of {', '.join(COARSE_TO_FINE)}",
            )


@dataclass(frozen=True)
class ModelConfigs:
    dit: DiTConfig = field(default_factory=DiTConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)
    dinov2: DINOv2Config = field(default_factory=DINOv2Config)

    def build_on_meta(self) -> Models:
        """The three networks without memory behind them, for weights to be assigned to."""
        with torch.device("meta"):
            return Models(DINOv2(self.dinov2), DiT(self.dit), VAE(self.vae))

    @classmethod
    def from_file(cls, path: Path | None) -> ModelConfigs:
        """Full-size defaults, or the `{"dit": {...}, "vae": {...}, "dinov2": {...}}` of `path`."""
        if path is None:
            return cls()
        try:
            values = json.loads(Path(path).read_text())
            return cls(
                DiTConfig.from_dict(values.get("dit", {})),
                VAEConfig.from_dict(values.get("vae", {})),
                DINOv2Config.from_dict(values.get("dinov2", {})),
            )
        except (OSError, ValueError, TypeError, AttributeError) as error:
            raise BadInputError(f"cannot read the model configuration {path}: {error}") from error


@dataclass
class Models:
    dinov2: DINOv2
    dit: DiT
    vae: VAE


@dataclass
class GenerationResult:
    output_dir: Path
    glb: Path
    npz: Path
    preview: Path
    result_json: Path
    seed: int
    timings: dict[str, float]
    parts: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            key: str(value) if isinstance(value, Path) else value
            for key, value in asdict(self).items()
        }


class StageClock:
    """Per-stage wall times, and the progress/cancel hooks of one job."""

    def __init__(self, on_progress: ProgressCallback | None, should_cancel: CancelCheck | None):
        self.timings: dict[str, float] = {}
        self.on_progress = on_progress
        self.should_cancel = should_cancel

    @contextlib.contextmanager
    def stage(self, name: str, total: int = 1) -> Iterator[Callable[[int, int], None]]:
        self.check_cancel()
        self.report(name, 0, total)
        start = time.perf_counter()
        yield lambda step, steps: self.step(name, step, steps)
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start

    def step(self, stage: str, step: int, total: int) -> None:
        """A step of a stage done: report it, then stop here if the job was cancelled."""
        self.report(stage, step, total)
        self.check_cancel()

    def report(self, stage: str, step: int, total: int) -> None:
        if self.on_progress is not None:
            self.on_progress(Progress(stage, step, total))

    def check_cancel(self) -> None:
        if self.should_cancel is not None and self.should_cancel():
            raise Cancelled("generation cancelled")


class PartPackerPipeline:
    """Loads the weights once and turns images into part meshes, one job at a time."""

    def __init__(self, settings: PipelineSettings | None = None, models: Models | None = None):
        """`models` are already on the device (benchmarks with random weights); otherwise the
        weights are loaded from the settings' files on the first job."""
        self.settings = settings = settings or PipelineSettings()
        self.placement: Placement = choose_placement(settings.device)
        self.configs = (
            ModelConfigs(models.dit.config, models.vae.config, models.dinov2.config)
            if models
            else ModelConfigs.from_file(settings.model_config)
        )
        self.preparer = ImagePreparer(
            BackgroundRemover(settings.rembg_model, settings.rembg_model_path)
        )
        self.models = self._compiled(models) if models else None

    def device_report(self) -> dict[str, Any]:
        return self.placement.report()

    @property
    def loaded(self) -> bool:
        return self.models is not None

    def load(self, on_progress: ProgressCallback | None = None) -> Models:
        return self._ensure_loaded(StageClock(on_progress, None))

    def _ensure_loaded(self, clock: StageClock) -> Models:
        if self.models is None:
            with clock.stage("load", 3) as step:
                files = resolve_weights(
                    self.settings.weights_dir,
                    cache_dir=self.settings.cache_dir,
                    revision=self.settings.revision,
                )
                self.models = self._compiled(self._load_models(files, step))
                clock.report("load", 3, 3)  # no cancel check here: the models are worth keeping
        return self.models

    def _load_models(self, files: WeightFiles, step: Callable[[int, int], None]) -> Models:
        models = self.configs.build_on_meta()
        home = torch.device("cpu") if self.settings.low_memory else self.placement.device
        networks = checkpoints(models, files)
        for done, (module, path, prefix) in enumerate(networks, start=1):
            self._load(module, path, prefix, home)
            if done < len(networks):
                step(done, len(networks))  # may stop between files; the caller reports the last
        return models

    def _compiled(self, models: Models) -> Models:
        """`models` with the DiT compiled when the settings ask for it; the caller's untouched."""
        if not self.settings.compile_dit:
            return models
        return replace(models, dit=cast(DiT, torch.compile(models.dit)))

    def _load(self, module: torch.nn.Module, path: Path, prefix: str, device: Any) -> None:
        dtype, cache_dir = self.placement.dtype, self.settings.weights_cache
        if cache_dir is None:
            load_weights(module, path, prefix=prefix, dtype=dtype, device=device)
        else:
            load_weights_cached(
                module, path, cache_dir=cache_dir, prefix=prefix, dtype=dtype, device=device
            )

    def unload(self) -> int:
        """Drop the models; returns the device bytes that freed (0 on the CPU)."""
        before = self._device_bytes()
        self.models = None
        self._release_cached_memory()
        return max(before - self._device_bytes(), 0)

    def _device_bytes(self) -> int:
        if self.placement.device.type == "cuda":
            return torch.cuda.memory_reserved(self.placement.device)
        return 0

    def prepare(self, image: Path, preview: Path) -> PreparedImage:
        return self.preparer.prepare_preview(image, preview)

    def generate(
        self,
        image: Path,
        output_dir: Path,
        params: GenerationParams | None = None,
        on_progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
    ) -> GenerationResult:
        params = (params or GenerationParams()).with_resolved_seed()
        try:
            with building(output_dir) as folder:  # an output that cannot work is refused first
                clock = StageClock(on_progress, should_cancel)
                return self._generate(image, folder, params, clock)
        except torch.OutOfMemoryError as error:
            self._release_cached_memory()
            raise DeviceOutOfMemoryError(
                f"the {self.placement.report()['device_name']} ran out of memory",
                f"lower the grid resolution (now {params.grid_res}), close other GPU programs, "
                "or use low-memory mode",
            ) from error

    def _generate(
        self, image: Path, folder: JobFolder, params: GenerationParams, clock: StageClock
    ) -> GenerationResult:
        with clock.stage("prepare"):  # first: a bad image fails before any folder or weights
            prepared = self.preparer.prepare(image)
            prepared.save_preview(folder.file("preview.png"))
        models = self._ensure_loaded(clock)
        with clock.stage("condition"), self._on_device(models.dinov2):
            cond = self._condition(models.dinov2, prepared)
        with clock.stage("sample", params.steps) as step, self._on_device(models.dit):
            latent = self._sample(models.dit, cond, params, step, clock.should_cancel)
        with self._on_device(models.vae):
            grids = self._decode(models.vae, latent, params.grid_res, clock)
        options = MeshOptions(
            simplify=params.simplify,
            target_faces=params.target_faces,
            remove_small_pieces=params.remove_small_pieces,
        )
        with clock.stage("extract", len(grids)) as step:
            meshes = []
            for volume, grid in enumerate(grids):
                meshes.append(extract_mesh(grid, options.backend))
                step(volume + 1, len(grids))
        with clock.stage("postprocess", len(meshes)) as step:
            per_volume = []
            for volume, (vertices, faces) in enumerate(meshes):
                per_volume.append(mesh_parts(vertices, faces, volume, options))
                step(volume + 1, len(meshes))
            parts = assemble_parts(per_volume)
        with clock.stage("export"):
            write_glb(parts, folder.file("parts.glb"))
            write_npz(parts, folder.file("parts.npz"))
        return self._record(image, folder, params, parts, clock.timings)

    @contextlib.contextmanager
    def _on_device(self, module: torch.nn.Module) -> Iterator[None]:
        """In low-memory mode, `module` is on the device only inside this block (and leaves it
        whatever happens there); otherwise it stays where it was loaded, on the device."""
        if not self.settings.low_memory:
            yield
            return
        try:
            module.to(self.placement.device)  # an out-of-memory here leaves nothing behind either
            yield
        finally:
            module.to("cpu")
            self._release_cached_memory()

    @torch.no_grad()
    def _condition(self, dinov2: DINOv2, prepared: PreparedImage) -> torch.Tensor:
        pixels = torch.from_numpy(prepared.model_input())[None].to(self.placement.device)
        return dinov2.condition(normalize_image(pixels))

    def _sample(
        self,
        dit: DiT,
        cond: torch.Tensor,
        params: GenerationParams,
        on_step: Callable[[int, int], None],
        should_cancel: CancelCheck | None,
    ) -> torch.Tensor:
        config = self.configs.dit
        noise_shape = (1, config.sequence_length, config.latent_dim)
        noise = initial_noise(params.seed, noise_shape, self.placement.device)
        return sample(
            dit,
            cond,
            noise,
            params.steps,
            params.cfg_scale,
            DEFAULT_SHIFT,
            guidance_steps=params.guidance_steps,
            on_step=on_step,
            should_cancel=should_cancel,
        )

    def _decode(
        self, vae: VAE, latent: torch.Tensor, resolution: int, clock: StageClock
    ) -> list[np.ndarray]:
        levels = len(grid_levels(resolution, MIN_RESOLUTION))
        volumes = latent.chunk(2, dim=1)
        decode = COARSE_TO_FINE[self.settings.decode_strategy]
        total = levels * len(volumes)
        grids = []
        with clock.stage("decode", total) as step:
            fields = self._fields(vae, volumes)
            chunk_size = self.settings.query_chunk_size or query_chunk_size(
                self.placement, self.configs.vae, self.settings.low_memory
            )
            for index, field in enumerate(fields):

                def on_level(done: int, _: int, first: int = index * levels) -> None:
                    step(first + done, total)

                grid = decode(
                    field,
                    resolution,
                    MIN_RESOLUTION,
                    chunk_size,
                    self.placement.device,
                    on_level=on_level,
                    should_cancel=clock.should_cancel,
                )
                grids.append(grid.cpu().numpy())
        return grids

    def _fields(self, vae: VAE, volumes: tuple[torch.Tensor, ...]) -> list[Field]:
        reuse = self.settings.reuse_query_context
        if self.settings.decode_volumes_together:
            return vae_fields(vae, torch.cat(volumes), reuse)
        return [vae_field(vae, volume, reuse) for volume in volumes]

    def _record(
        self,
        image: Path,
        folder: JobFolder,
        params: GenerationParams,
        parts: list[Part],
        timings: dict[str, float],
    ) -> GenerationResult:
        """result.json, written last, with the time of every stage; the job's result."""
        output_dir = folder.target
        result = GenerationResult(
            output_dir=output_dir,
            glb=output_dir / "parts.glb",
            npz=output_dir / "parts.npz",
            preview=output_dir / "preview.png",
            result_json=output_dir / "result.json",
            seed=params.seed,
            timings=timings,
            parts=[part_summary(part) for part in parts],
        )
        record = {
            "image": str(image),
            "params": params.to_dict(),
            "seed": params.seed,
            "timings": timings,
            "parts": result.parts,
            "device": self.placement.report(),
            "versions": versions(),
        }
        write_json(record, folder.file("result.json"))
        return result

    def _release_cached_memory(self) -> None:
        gc.collect()
        if self.placement.device.type == "cuda":
            torch.cuda.empty_cache()


def checkpoints(models: Models, files: WeightFiles) -> list[tuple[torch.nn.Module, Path, str]]:
    """Each network with the file its weights come from and their key prefix in that file."""
    return [
        (models.dinov2, files.dinov2, ""),
        (models.dit, files.flow, "dit."),
        (models.vae, files.vae, ""),
    ]


def query_chunk_size(placement: Placement, config: VAEConfig, low_memory: bool = False) -> int:
    """As many points per query as fit in half the free device memory (at most
    LOW_MEMORY_QUERY_BYTES in low-memory mode), between DEFAULT_CHUNK_SIZE and 2^20. Per point:
    the query's activations, and attention scores in case no fused kernel runs."""
    if placement.device.type != "cuda":
        return DEFAULT_CHUNK_SIZE  # CPU attention runs unfused: bigger chunks only cost memory
    free, _ = torch.cuda.mem_get_info(placement.device)
    budget = min(free // 2, LOW_MEMORY_QUERY_BYTES) if low_memory else free // 2
    activations = 12 * config.query_hidden_dim * placement.dtype.itemsize
    scores = 4 * config.query_num_heads * config.latent_size
    return int(min(max(budget // (activations + scores), DEFAULT_CHUNK_SIZE), 1 << 20))


def part_summary(part: Part) -> dict[str, Any]:
    return {
        "name": part.name,
        "volume": part.volume,
        "faces": len(part.faces),
        "vertices": len(part.vertices),
        "color": list(part.color),
    }


def versions() -> dict[str, str]:
    return {
        "backend": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
