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
    DEFAULT_STRATEGY,
    decode_steps,
    decode_volumes,
    query_chunk_size,
    strategy_named,
)
from .device import Placement, attention_kernels, choose_placement
from .errors import BadInputError, CancelCheck, DeviceOutOfMemoryError
from .export import write_glb, write_json, write_npz
from .image import BackgroundRemover, ImagePreparer, PreparedImage
from .job_folder import JobFolder, building
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
    decode_strategy: str = DEFAULT_STRATEGY
    """A name of backend.decoding.STRATEGIES."""
    compile_dit: bool = False
    """Run the DiT through torch.compile: fused kernels for every later step, but the first job
    pays the compilation (tens of seconds, again for each new batch shape)."""

    def __post_init__(self) -> None:
        strategy_named(self.decode_strategy)  # an unknown name is bad input before any job


@dataclass(frozen=True)
class ModelConfigs:
    dit: DiTConfig = field(default_factory=DiTConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)
    dinov2: DINOv2Config = field(default_factory=DINOv2Config)

    def build_on_meta(self) -> Models:
        """The three networks without memory behind them, for weights to be assigned to."""
        with torch.device("meta"):
            return Models(DINOv2(self.dinov2), DiT(self.dit), VAE(self.vae))

    def attention_head_dims(self) -> dict[str, int]:
        return {
            "dinov2": self.dinov2.hidden_size // self.dinov2.num_attention_heads,
            "dit": self.dit.hidden_dim // self.dit.num_heads,
            "vae": self.vae.dec_hidden_dim // self.vae.dec_num_heads,
            "vae_query": self.vae.query_hidden_dim // self.vae.query_num_heads,
        }

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
                clock = JobProgress(on_progress, should_cancel)
                return self._generate(image, folder, params, clock)
        except torch.OutOfMemoryError as error:
            raise DeviceOutOfMemoryError(
                f"the {self.placement.report()['device_name']} ran out of memory",
                f"lower the grid resolution (now {params.grid_res}), close other GPU programs, "
                "or use low-memory mode",
            ) from error
        finally:
            release_cached_memory(self.placement.device)  # the models stay loaded

    def _generate(
        self, image: Path, folder: JobFolder, params: GenerationParams, clock: JobProgress
    ) -> GenerationResult:
        with clock.stage("prepare"):  # first: a bad image fails before any folder or weights
            prepared = self.preparer.prepare(image)
            prepared.save_preview(folder.file("preview.png"))
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
            write_glb(parts, folder.file("parts.glb"))
            write_npz(parts, folder.file("parts.npz"))
        return self._record(image, folder, params, parts, clock.timings)

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
        strategy = strategy_named(self.settings.decode_strategy)
        with clock.stage("decode", decode_steps(strategy, resolution)) as step:
            settings = self.settings
            chunk_size = query_chunk_size(self.placement, self.configs.vae, settings.low_memory)
            return decode_volumes(
                vae, latent, resolution, strategy, chunk_size, step, clock.should_cancel
            )

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
            "attention_kernels": attention_kernels(
                self.placement, self.configs.attention_head_dims()
            ),
            "versions": versions(),
        }
        write_json(record, folder.file("result.json"))
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
