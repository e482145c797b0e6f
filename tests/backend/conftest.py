"""Shared fixtures of the backend tests: tiny weights, a tiny rembg model, a CPU pipeline."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))

from rembg_model import build_border_contrast_model  # noqa: E402
from tiny_weights import write_tiny_weights  # noqa: E402

from backend.pipeline import PartPackerPipeline, PipelineSettings  # noqa: E402
from backend.weights.integrity import RECORD_ENV, RECORD_NAME  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def integrity_record(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Weight files checked by the tests (and the backends they start) are remembered in the
    session's own record, not the user's."""
    record = tmp_path_factory.mktemp("integrity") / RECORD_NAME
    os.environ[RECORD_ENV] = str(record)
    return record


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with tiny flow.pt, vae.pt, model.safetensors and model_config.json."""
    return write_tiny_weights(tmp_path_factory.mktemp("tiny_weights"))


@pytest.fixture(scope="session")
def rembg_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_border_contrast_model(tmp_path_factory.mktemp("rembg") / "segmenter.onnx")


@pytest.fixture(scope="session")
def tiny_settings(tiny_weights: Path, rembg_model: Path) -> PipelineSettings:
    return PipelineSettings(
        weights_dir=tiny_weights,
        model_config=tiny_weights / "model_config.json",
        device="cpu",
        rembg_model_path=rembg_model,
    )


@pytest.fixture(scope="session")
def tiny_pipeline(tiny_settings: PipelineSettings) -> PartPackerPipeline:
    return PartPackerPipeline(tiny_settings)


@pytest.fixture(scope="session")
def object_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An RGB photo-like image: two coloured shapes on a plain grey backdrop (needs rembg)."""
    pixels = np.full((240, 320, 3), 200, dtype=np.uint8)
    pixels[60:180, 40:150] = (200, 40, 40)
    pixels[90:200, 190:280] = (30, 90, 200)
    path = tmp_path_factory.mktemp("images") / "two_shapes.png"
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture(scope="session")
def tiny_flags(tiny_weights: Path, rembg_model: Path) -> list[str]:
    """Command-line options of `python -m backend ...` for the tiny weights on the CPU."""
    return [
        *("--weights-dir", str(tiny_weights)),
        *("--model-config", str(tiny_weights / "model_config.json")),
        *("--device", "cpu"),
        *("--rembg-model-path", str(rembg_model)),
    ]
