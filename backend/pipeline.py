"""The whole generation, read as a recipe:
prepare → condition → sample → decode → extract → post-process → export."""

from __future__ import annotations

import json
import logging
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple, cast

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
from .errors import BadInputError, CancelCheck, DeviceOutOfMemoryError, OutputError
from .export import write_glb, write_json, write_npz
from .image import BackgroundRemover, ImagePreparer, PreparedImage
from .meshing import MeshOptions, extract_mesh, mesh_parts
from .models import VAE, DINOv2, DINOv2Config, DiT, DiTConfig, VAEConfig, normalize_image
from .models.vae import ENCODER_PREFIXES
from .params import GenerationParams
from .parts import Part, assemble_parts
from .progress import JobProgress, ProgressCallback
from .progress import Progress as Progress  # the events `generate` reports, imported from here
from .residency import Residency, release_cached_memory
from .sampling import DEFAULT_SHIFT, initial_noise, sample
from .weight_cache import load_weights_cached
from .weights import WeightFiles, load_weights, resolve_weights

log = logging.getLogger(__name__)

LOW_MEMORY_QUERY_BYTES = 2 << 30
"""Device memory for one VAE query chunk in low-memory mode."""


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
    VAE), and bound the query chunks (residency.py): the device holds one network's weights at
    a time, at most the DiT's 2.5 GB in bf16 instead of all three's 5.4 GB, for some seconds of
    transfers per job (not measured on a GPU yet)."""
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
        self.residency = Residency(self.placement.device, settings.low_memory)

    def device_report(self) -> dict[str, Any]:
        return self.placement.report()

    @property
    def loaded(self) -> bool:
        return self.models is not None

    def load(self, on_progress: ProgressCallback | None = None) -> Models:
        return self._ensure_loaded(JobProgress(on_progress, None))

    def _ensure_loaded(self, clock: JobProgress) -> Models:
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
        home = self.residency.home
        networks = checkpoints(models, files)
        for done, checkpoint in enumerate(networks, start=1):
            self._load(checkpoint, home)
            if done < len(networks):
                step(done, len(networks))  # may stop between files; the caller reports the last
        return models

    def _compiled(self, models: Models) -> Models:
        """`models` with the DiT compiled when the settings ask for it; the caller's untouched."""
        if not self.settings.compile_dit:
            return models
        return replace(models, dit=cast(DiT, torch.compile(models.dit)))

    def _load(self, checkpoint: Checkpoint, device: Any) -> None:
        module, path, prefix, skipped = checkpoint
        dtype, cache_dir = self.placement.dtype, self.settings.weights_cache
        how: dict[str, Any] = {
            "prefix": prefix,
            "skipped": skipped,
            "dtype": dtype,
            "device": device,
        }
        if cache_dir is None:
            load_weights(module, path, **how)
        else:
            load_weights_cached(module, path, cache_dir=cache_dir, **how)

    def unload(self) -> int:
        """Drop the models; returns the device bytes that freed (0 on the CPU)."""
        before = self._device_bytes()
        self.models = None
        self.residency.forget()
        release_cached_memory(self.placement.device)
        return max(before - self._device_bytes(), 0)

    def _device_bytes(self) -> int:
        if self.placement.device.type == "cuda":
            return torch.cuda.memory_reserved(self.placement.device)
        return 0

    def prepare(self, image: Path, preview: Path) -> PreparedImage:
        prepared = self.preparer.prepare(image)
        prepared.save_preview(preview)
        return prepared

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
            return self._generate(
                image, output_dir, params, JobProgress(on_progress, should_cancel)
            )
        except torch.OutOfMemoryError as error:
            raise DeviceOutOfMemoryError(
                f"the {self.placement.report()['device_name']} ran out of memory",
                f"lower the grid resolution (now {params.grid_res}), close other GPU programs, "
                "or use low-memory mode",
            ) from error
        finally:
            release_cached_memory(self.placement.device)  # the models stay loaded

    def _generate(
        self, image: Path, output_dir: Path, params: GenerationParams, clock: JobProgress
    ) -> GenerationResult:
        with clock.stage("prepare"):  # first: a bad image fails before any folder or weights
            prepared = self.preparer.prepare(image)
            output_dir = make_output_dir(output_dir)
            prepared.save_preview(output_dir / "preview.png")
        models = self._ensure_loaded(clock)
        with clock.stage("condition"), self.residency.visit(models.dinov2):
            cond = self._condition(models.dinov2, prepared)
        with clock.stage("sample", params.steps) as step, self.residency.visit(models.dit):
            latent = self._sample(models.dit, cond, params, step, clock.should_cancel)
        with self.residency.visit(models.vae):
            grids = self._decode(models.vae, latent, params.grid_res, clock)
        options = MeshOptions(
            simplify=params.simplify,
            target_faces=params.target_faces,
            remove_small_pieces=params.remove_small_pieces,
        )
        with clock.stage("extract", len(grids)) as step:
            meshes = []
            for volume, grid in enumerate(grids):
                meshes.append(extract_mesh(grid, options.marching_cubes))
                step(volume + 1, len(grids))
        with clock.stage("postprocess", len(meshes)) as step:
            per_volume = []
            for volume, (vertices, faces) in enumerate(meshes):
                per_volume.append(mesh_parts(vertices, faces, volume, options))
                step(volume + 1, len(meshes))
            parts = assemble_parts(per_volume)
        with clock.stage("export"):
            write_glb(parts, output_dir / "parts.glb")
            write_npz(parts, output_dir / "parts.npz")
        return self._record(image, output_dir, params, parts, clock.timings)

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
        self, vae: VAE, latent: torch.Tensor, resolution: int, clock: JobProgress
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
            for index, volume_field in enumerate(fields):

                def on_level(done: int, _: int, first: int = index * levels) -> None:
                    step(first + done, total)

                grid = decode(
                    volume_field,
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
        output_dir: Path,
        params: GenerationParams,
        parts: list[Part],
        timings: dict[str, float],
    ) -> GenerationResult:
        """result.json, written last, with the time of every stage; the job's result."""
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
        write_json(record, result.result_json)
        return result


class Checkpoint(NamedTuple):
    module: torch.nn.Module
    path: Path
    prefix: str = ""
    """Of the network's keys in the file."""
    skipped: tuple[str, ...] = ()
    """Key prefixes of the file that the network leaves out."""


def checkpoints(models: Models, files: WeightFiles) -> list[Checkpoint]:
    """Each network with the file its weights come from."""
    return [
        Checkpoint(models.dinov2, files.dinov2),
        Checkpoint(models.dit, files.flow, prefix="dit."),
        Checkpoint(models.vae, files.vae, skipped=ENCODER_PREFIXES),
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


def make_output_dir(path: Path) -> Path:
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(
            f"cannot create the output folder {path}: {error.strerror}",
            "choose a folder you can write to",
        ) from error
    return path
