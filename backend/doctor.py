"""`python -m backend doctor`: can generation run here, and if not, what to do about it.

Each check says what it found and, when something is wrong, what to do. Weight files are checked
key for key and shape for shape against the models the settings describe, from their metadata:
safetensors headers, memory-mapped pickles; nothing is loaded onto a device. Their bytes are
checked too (weights/integrity.py), which reads each file whole the first time.
"""

from __future__ import annotations

import functools
import importlib.metadata
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .errors import PartPackerError

if TYPE_CHECKING:
    import torch

    from .pipeline import ModelConfigs, PipelineSettings
    from .weights import IntegrityRecord, WeightFiles

# The distributions generation imports (pyproject.toml's dependencies).
LIBRARIES = (
    "torch",
    "numpy",
    "scipy",
    "scikit-image",
    "trimesh",
    "fast-simplification",
    "pillow",
    "rembg",
    "onnxruntime",
    "huggingface_hub",
    "safetensors",
    "tqdm",
    "filelock",
)
INSTALL_HINT = "install the backend's requirements: pip install -e . (in the backend's folder)"
GIB = 1024**3
COMFORTABLE_GPU_BYTES = 12 * GIB
"""Below this much GPU memory `doctor` suggests low-memory mode. A rule of thumb, not a
measurement: the full-size networks' weights alone take about 5.4 GB in bf16 (their parameter
counts × 2 bytes), and sampling and decoding need working memory beside them."""


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    message: str
    hint: str = ""
    exit_code: int = 0
    """The exit code of the error a failed check stands for (errors.py)."""

    @classmethod
    def failed(cls, name: str, error: PartPackerError) -> Check:
        return cls(name, False, error.message, error.hint, error.exit_code)


@dataclass
class DoctorReport:
    environment: dict[str, str]
    device: dict[str, Any]
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def exit_code(self) -> int:
        """0 when generation can run; else the code of the first problem."""
        return next((check.exit_code for check in self.checks if not check.ok), 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "environment": self.environment,
            "device": self.device,
            "checks": [asdict(check) for check in self.checks],
        }


def examine(settings: PipelineSettings) -> DoctorReport:
    versions = library_versions()
    checks = [libraries_check(versions)]
    device: dict[str, Any] = {}
    checks.append(guarded("device", lambda: device_check(settings.device, device)))
    configs: list[ModelConfigs] = []
    checks.append(guarded("model sizes", lambda: model_config_check(settings, configs)))
    if configs:
        checks += weight_checks(settings, configs[0])
    checks.append(guarded("background removal", lambda: rembg_check(settings)))
    environment = {
        "backend": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        **{name: version or "not installed" for name, version in versions.items()},
    }
    return DoctorReport(environment, device, checks)


def guarded(name: str, check: Callable[[], Check]) -> Check:
    """A check's own result, or a failed check for the error that stopped it."""
    try:
        return check()
    except PartPackerError as error:
        return Check.failed(name, error)
    except ImportError as error:
        return Check(name, False, f"cannot check: {error}", INSTALL_HINT, 1)


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def libraries_check(versions: dict[str, str | None]) -> Check:
    missing = [name for name, version in versions.items() if version is None]
    if missing:
        return Check(
            "libraries", False, f"not installed: {', '.join(missing)}", INSTALL_HINT, exit_code=1
        )
    return Check("libraries", True, f"all {len(versions)} libraries installed")


def device_check(choice: str, details: dict[str, Any]) -> Check:
    """Fills `details` with what torch sees, and judges the device `choice` would use."""
    import torch

    from .device import choose_placement, mps_available

    details.update(
        torch=torch.__version__,
        cuda_build=torch.version.cuda,
        cuda_available=torch.cuda.is_available(),
        gpu_count=torch.cuda.device_count(),
        mps_available=mps_available(),
    )
    report = choose_placement(choice).report()
    details.update(report)
    found = f"{report['device_name']} ({report['device']}, {report['dtype']})"
    memory = report["memory_total_bytes"]
    memory = memory if isinstance(memory, int) else None
    if report["device"] == "cpu":
        return Check(
            "device",
            True,
            f"generation runs on the CPU: {found}, minutes per image at full size",
            "with an NVIDIA GPU, install a CUDA build of PyTorch (check the driver: nvidia-smi)",
        )
    if memory is not None and memory < COMFORTABLE_GPU_BYTES:
        return Check(
            "device",
            True,
            f"{found} with {memory / GIB:.1f} GiB",
            "little GPU memory: use --low-memory and a lower grid resolution",
        )
    size = "" if memory is None else f" with {memory / GIB:.1f} GiB"
    return Check("device", True, f"{found}{size}")


def model_config_check(settings: PipelineSettings, found: list[ModelConfigs]) -> Check:
    from .pipeline import ModelConfigs

    found.append(ModelConfigs.from_file(settings.model_config))
    source = "full size" if settings.model_config is None else f"from {settings.model_config}"
    return Check("model sizes", True, f"model sizes {source}")


def weight_checks(settings: PipelineSettings, configs: ModelConfigs) -> list[Check]:
    from .weights import integrity_record, resolve_weights

    files: list[WeightFiles] = []

    def locate() -> Check:
        files.append(
            resolve_weights(
                settings.weights_dir, cache_dir=settings.cache_dir, revision=settings.revision
            )
        )
        return Check("weights", True, f"found in {files[0].flow.parent}")

    checks = [guarded("weights", locate)]
    if files:
        record = integrity_record(settings.weights_cache)
        for layout in expected_layouts(files[0], configs):
            check = functools.partial(file_check, layout, record)
            checks.append(guarded(f"weights {layout.path.name}", check))
    return checks


@dataclass(frozen=True)
class ExpectedLayout:
    path: Path
    shapes: dict[str, torch.Size]
    prefix: str
    """Of the network's keys in the file."""
    skipped: tuple[str, ...]
    """Key prefixes of the file that the network leaves out."""


def expected_layouts(files: WeightFiles, configs: ModelConfigs) -> list[ExpectedLayout]:
    """What each file must hold for its network, as the pipeline loads them; the models are
    built on the meta device (no memory)."""
    from .pipeline import checkpoints

    return [
        ExpectedLayout(
            path, {key: value.shape for key, value in module.state_dict().items()}, prefix, skipped
        )
        for module, path, prefix, skipped in checkpoints(configs.build_on_meta(), files)
    ]


def file_check(layout: ExpectedLayout, record: IntegrityRecord) -> Check:
    """Keys and shapes from the file's metadata, then its bytes."""
    from .weights import (
        check_state_dict,
        drop_skipped,
        identify_checkpoint,
        read_layout,
        strip_prefix,
        verify_integrity,
    )

    path, expected = layout.path, layout.shapes
    what = identify_checkpoint(layout.prefix + key for key in expected) or path.name
    state = drop_skipped(strip_prefix(read_layout(path), layout.prefix), layout.skipped)
    check_state_dict(state, expected, file=path, what=what)
    verify_integrity(path, record)
    size = path.stat().st_size / 1e9
    return Check(
        f"weights {path.name}", True, f"{path}: {len(state)} tensors match ({size:.2f} GB)"
    )


def rembg_check(settings: PipelineSettings) -> Check:
    """Only images without alpha need the segmenter; a missing one is downloaded on first use."""
    from .image import BackgroundRemover, rembg_model_file

    remover = BackgroundRemover(settings.rembg_model, settings.rembg_model_path)
    if remover.model_path is not None:
        if not remover.model_path.is_file():
            return Check(
                "background removal",
                False,
                f"no rembg model at {remover.model_path}",
                "fix --rembg-model-path, or leave it out to use rembg's own u2net",
                exit_code=2,
            )
        return Check("background removal", True, f"rembg model {remover.model_path}")
    location = rembg_model_file(remover.model_name)
    if location is None:
        return Check(
            "background removal",
            True,
            f"rembg model {remover.model_name!r} is not downloaded yet",
            "it downloads on first use of an image without alpha (u2net: 176 MB); offline, "
            "use images with an alpha channel",
        )
    return Check("background removal", True, f"rembg model {location}")


def format_report(report: DoctorReport) -> str:
    env = report.environment
    lines = [f"PartPacker backend {env['backend']}, Python {env['python']} on {env['platform']}"]
    libraries = ", ".join(f"{name} {env[name]}" for name in LIBRARIES)
    lines.append(f"libraries: {libraries}")
    for check in report.checks:
        lines.append(f"[{'ok' if check.ok else 'FAIL'}] {check.name}: {check.message}")
        if check.hint:
            lines.append(f"       {check.hint}")
    problems = sum(not check.ok for check in report.checks)
    lines.append(
        "generation can run" if report.ok else f"generation cannot run: {problems} problem(s)"
    )
    return "\n".join(lines)
