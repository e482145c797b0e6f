"""The public Space's API as data: its parameter names, labels, defaults and ranges, and how its
values become our GenerationParams. Written from the Space's API page; no Gradio here.

    /process_image    image_path -> the RGBA 518x518 segmentation
    /get_random_seed  randomize_seed, seed -> seed
    /process_3d       input_image, num_steps, cfg_scale, grid_res, seed, simplify_mesh,
                      target_num_faces -> a GLB file
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import BadInputError
from ..params import PARAM_RANGES, GenerationParams, ParamRange, plain_number

SPACE_GRID_RES = (256, 512)
"""The Space's grid range (our worker also takes lower grids for previews)."""


@dataclass(frozen=True)
class SpaceSlider:
    """One of the Space's sliders, and the GenerationParams field it sets."""

    label: str
    ours: str
    low: float
    high: float
    default: float
    step: float
    whole: bool

    def check(self, name: str, value: Any) -> float:
        """`value` as given by a client, or a BadInputError naming the parameter."""
        hint = (
            f"{name} ({self.label}) takes {self.range_text()}; default {plain_number(self.default)}"
        )
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadInputError(f"{name} must be a number, got {value!r}", hint)
        if not math.isfinite(value):
            raise BadInputError(f"{name} must be finite, got {value!r}", hint)
        if self.whole and value != int(value):
            raise BadInputError(f"{name} must be a whole number, got {shown(value)}", hint)
        if not self.low <= value <= self.high:
            raise BadInputError(f"{name} must be {self.range_text()}, got {shown(value)}", hint)
        return value

    def range_text(self) -> str:
        return f"between {plain_number(self.low)} and {plain_number(self.high)}"


def shown(value: float) -> str:
    """A number as a person wrote it: 2147483648, not 2.14748e+09; 2.5 as 2.5."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _from_ours(label: str, ours: str, step: float) -> SpaceSlider:
    spec: ParamRange = PARAM_RANGES[ours]
    assert spec.low is not None and spec.high is not None
    whole = isinstance(spec.default, int)
    return SpaceSlider(label, ours, spec.low, spec.high, spec.default, step, whole)


SLIDERS: dict[str, SpaceSlider] = {
    "num_steps": _from_ours("Inference steps", "steps", 1),
    "cfg_scale": _from_ours("CFG scale", "cfg_scale", 0.1),
    "grid_res": SpaceSlider("Grid resolution", "grid_res", *SPACE_GRID_RES, 384, 1, True),
    "seed": _from_ours("Seed", "seed", 1),
    "target_num_faces": _from_ours("Face number", "target_faces", 1000),
}
CHECKBOXES = {"randomize_seed": ("Randomize seed", True), "simplify_mesh": ("Simplify mesh", False)}
LABELS = {
    "image_path": "Input Image",
    "segmentation": "Segmentation Result",
    "geometry": "Geometry",
}


def check_switch(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        label = CHECKBOXES[name][0]
        raise BadInputError(f"{name} must be true or false, got {value!r}", f"{name}: {label}")
    return value


def generation_params(
    values: dict[str, Any], grid_res_cap: int | None = None
) -> tuple[GenerationParams, int | None]:
    """The Space's process_3d values (already checked by their sliders) as our parameters, with
    the seed as given; and the grid asked for when the server's cap lowered it (else None)."""
    simplify = check_switch("simplify_mesh", values["simplify_mesh"])
    settings: dict[str, Any] = {"randomize_seed": False, "simplify": simplify}
    for name, slider in SLIDERS.items():
        value = slider.check(name, values[name])
        settings[slider.ours] = int(value) if slider.whole else float(value)
    asked = settings["grid_res"]
    lowered = grid_res_cap is not None and asked > grid_res_cap
    if lowered:
        settings["grid_res"] = grid_res_cap
    return GenerationParams.from_dict(settings), asked if lowered else None
