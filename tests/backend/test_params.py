"""Generation parameters: the demo's defaults and ranges, and clear errors for bad values."""

from __future__ import annotations

import random

import pytest

from backend.errors import BadInputError
from backend.params import GenerationParams


def test_defaults_are_the_demo_defaults() -> None:
    params = GenerationParams()
    assert (params.steps, params.cfg_scale, params.grid_res) == (50, 7.0, 384)
    assert (params.seed, params.randomize_seed) == (0, True)
    assert (params.simplify, params.target_faces) == (False, 100_000)
    assert params.remove_small_pieces is False
    assert params.guidance_steps == 50


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"steps": 0}, "steps must be between 1 and 100"),
        ({"steps": 101}, "steps must be between 1 and 100"),
        ({"steps": 2.5}, "steps must be a whole number"),
        ({"cfg_scale": "high"}, "cfg_scale must be a number"),
        ({"cfg_scale": float("nan")}, "cfg_scale must be finite"),
        ({"grid_res": 1024}, "grid_res must be between"),
        ({"seed": -1}, "seed must be between 0 and"),
        ({"seed": 2**31}, "seed must be between 0 and 2147483647"),
        ({"target_faces": 500}, "target_faces must be between 10000 and 1000000"),
        ({"simplify": "yes"}, "simplify must be true or false"),
        ({"steps": True}, "steps must be a number"),
        ({"colour": 3}, "unknown parameter"),
        ({"seed": 10**400}, "seed must be between 0 and 2147483647, got a number of 401 digits"),
        ({"steps": -(10**400)}, "steps must be between 1 and 100"),
        ({"cfg_scale": 10**400}, "cfg_scale must be between 2 and 10"),
        ({"guidance_fraction": 1e308 * 10}, "guidance_fraction must be finite"),
    ],
)
def test_bad_values_are_refused_with_a_specific_message(values, message) -> None:
    with pytest.raises(BadInputError, match=message):
        GenerationParams.from_dict(values)


def test_json_numbers_are_coerced() -> None:
    params = GenerationParams.from_dict({"steps": 30.0, "cfg_scale": 5, "seed": 7})
    assert params.steps == 30 and isinstance(params.steps, int)
    assert params.cfg_scale == 5.0 and isinstance(params.cfg_scale, float)


def test_randomize_seed_draws_in_the_demo_range_and_records_it() -> None:
    params = GenerationParams(seed=5).with_resolved_seed(random.Random(1))
    assert params.randomize_seed is False
    assert 0 <= params.seed < 2**31 - 1
    assert params.seed == random.Random(1).randrange(2**31 - 1)
    fixed = GenerationParams(seed=5, randomize_seed=False)
    assert fixed.with_resolved_seed() is fixed


def test_a_wrong_switch_is_explained_in_plain_words() -> None:
    with pytest.raises(BadInputError) as caught:
        GenerationParams.from_dict({"remove_small_pieces": "yes"})
    assert "remove_small_pieces" in caught.value.message
    assert "under 5% of the bounding-box diagonal" in caught.value.hint
