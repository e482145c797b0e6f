"""Generation parameters: the demo's names, defaults and ranges, validated where they enter."""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from .errors import BadInputError

MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class ParamRange:
    default: Any
    low: float | None = None
    high: float | None = None
    help: str = ""

    def range_text(self) -> str:
        """ "between 1 and 100"."""
        assert self.low is not None and self.high is not None, "a switch has no range"
        return f"between {plain_number(self.low)} and {plain_number(self.high)}"


def plain_number(value: float) -> str:
    """Whole numbers written out in full (2147483647, not 2.14748e+09), others short (0.2)."""
    return str(value) if isinstance(value, int) else f"{value:g}"


# One table drives validation, the command line and the protocol documentation.
PARAM_RANGES: dict[str, ParamRange] = {
    "steps": ParamRange(50, 1, 100, "flow-matching sampler steps"),
    "cfg_scale": ParamRange(7.0, 2.0, 10.0, "classifier-free guidance scale"),
    "grid_res": ParamRange(384, 16, 512, "marching-cubes grid resolution (demo: 256-512)"),
    "seed": ParamRange(0, 0, MAX_SEED, "random seed of the initial noise"),
    "randomize_seed": ParamRange(True, help="draw a new seed instead of using `seed`"),
    "simplify": ParamRange(False, help="decimate every volume to about `target_faces` faces"),
    "target_faces": ParamRange(100_000, 10_000, 1_000_000, "face budget when simplifying"),
    "guidance_fraction": ParamRange(
        1.0,
        0.2,
        1.0,
        "speed preset, changes the output: guide only the first fraction of the steps "
        "(1.0 = every step, as the demo)",
    ),
    "remove_small_pieces": ParamRange(
        False,
        help="the demo's clean-up: drop pieces under 5% of the bounding-box diagonal or 25 faces",
    ),
}


def _default(name: str) -> Any:
    return PARAM_RANGES[name].default


@dataclass(frozen=True)
class GenerationParams:
    """The demo's parameters; defaults and ranges from PARAM_RANGES."""

    steps: int = _default("steps")
    cfg_scale: float = _default("cfg_scale")
    grid_res: int = _default("grid_res")
    seed: int = _default("seed")
    randomize_seed: bool = _default("randomize_seed")
    simplify: bool = _default("simplify")
    target_faces: int = _default("target_faces")
    guidance_fraction: float = _default("guidance_fraction")
    remove_small_pieces: bool = _default("remove_small_pieces")

    @property
    def guidance_steps(self) -> int:
        return max(1, round(self.steps * self.guidance_fraction))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> GenerationParams:
        """Validate untrusted values (JSON, command line) and build the parameters."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise BadInputError(
                f"unknown parameter(s): {', '.join(unknown)}",
                f"known parameters: {', '.join(sorted(known))}",
            )
        kwargs = {name: _coerce(name, value) for name, value in values.items()}
        return cls(**kwargs)

    def with_resolved_seed(self, rng: random.Random | None = None) -> GenerationParams:
        """The demo's get_random_seed: a fresh seed in [0, 2^31-1) when randomizing."""
        if not self.randomize_seed:
            return self
        seed = (rng or random.SystemRandom()).randrange(MAX_SEED)
        return replace(self, seed=seed, randomize_seed=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _coerce(name: str, value: Any) -> Any:
    spec = PARAM_RANGES[name]
    hint = f"{name}: {spec.help}" + (f" ({spec.range_text()})" if spec.low is not None else "")
    if isinstance(spec.default, bool):
        if not isinstance(value, bool):
            raise BadInputError(f"{name} must be true or false, got {value!r}", hint)
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadInputError(f"{name} must be a number, got {value!r}", hint)
    if isinstance(value, float) and not math.isfinite(value):
        raise BadInputError(f"{name} must be finite, got {value!r}", hint)
    if isinstance(spec.default, int):
        if isinstance(value, float) and not value.is_integer():
            raise BadInputError(f"{name} must be a whole number, got {value!r}", hint)
        value = int(value)
    if not spec.low <= value <= spec.high:  # whole numbers of any size compare exactly
        raise BadInputError(f"{name} must be {spec.range_text()}, got {shown(value)}", hint)
    return value if isinstance(spec.default, int) else float(value)


def shown(value: float) -> str:
    """A number for a message: whole numbers too long to read by their count of digits."""
    if isinstance(value, int) and abs(value) >= 10**18:
        return f"a number of {len(str(abs(value)))} digits"
    return plain_number(value)
