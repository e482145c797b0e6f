"""Scene settings and operator properties: the demo's names, defaults and ranges."""

from __future__ import annotations

import bpy
import pytest

# name: (default, hard min, hard max) as the public demo and PROTOCOL.md give them
DEMO_PARAMETERS = {
    "steps": (50, 1, 100),
    "cfg_scale": (7.0, 2.0, 10.0),
    "grid_res": (384, 16, 512),
    "seed": (0, 0, 2**31 - 1),
    "target_faces": (100_000, 10_000, 1_000_000),
}
DEMO_SWITCHES = {"randomize_seed": True, "simplify": False, "remove_small_pieces": False}
OUTPUT_DEFAULTS = {"size": 2.0, "at_cursor": True, "shade_smooth": True, "new_collection": True}


def settings_rna():
    return bpy.context.scene.partpacker.bl_rna.properties


@pytest.mark.parametrize("name", DEMO_PARAMETERS)
def test_parameter_defaults_and_ranges(addon, name):
    default, low, high = DEMO_PARAMETERS[name]
    prop = settings_rna()[name]
    assert prop.default == pytest.approx(default)
    assert (prop.hard_min, prop.hard_max) == pytest.approx((low, high))
    assert getattr(bpy.context.scene.partpacker, name) == pytest.approx(default)


def test_grid_resolution_offers_the_demo_range_on_the_slider(addon):
    prop = settings_rna()["grid_res"]
    assert (prop.soft_min, prop.soft_max) == (256, 512)


def test_switches_and_output_defaults(addon):
    settings = bpy.context.scene.partpacker
    for name, default in {**DEMO_SWITCHES, **OUTPUT_DEFAULTS}.items():
        assert getattr(settings, name) == default, name
    assert settings.guidance_fraction == 1.0


def test_remove_small_pieces_shows_the_demos_thresholds(addon):
    description = settings_rna()["remove_small_pieces"].description
    assert "5%" in description
    assert "25 faces" in description


def test_values_outside_the_range_are_clamped(addon):
    settings = bpy.context.scene.partpacker
    settings.steps = 1000
    settings.cfg_scale = 0.5
    assert settings.steps == 100
    assert settings.cfg_scale == 2.0


def test_generate_operator_takes_every_parameter_by_name(addon):
    properties = bpy.ops.partpacker.generate.get_rna_type().properties
    names = {p.identifier for p in properties}
    assert {"image_path", *DEMO_PARAMETERS, *DEMO_SWITCHES, *OUTPUT_DEFAULTS} <= names
    assert properties["steps"].hard_max == 100


def test_an_unknown_operator_keyword_is_refused(addon, prefs, backend_python):
    prefs.backend_python = str(backend_python)  # set up: the operator's poll lets it through
    with pytest.raises(TypeError):
        bpy.ops.partpacker.generate(image_path="x.png", num_steps=3)


def test_preferences_defaults(addon, prefs):
    """The properties' defaults (other tests set the values: the defaults are what a user gets)."""
    defaults = {name: prop.default for name, prop in prefs.bl_rna.properties.items()
                if hasattr(prop, "default")}  # fmt: skip
    assert defaults["device"] == "auto"
    assert defaults["weights_source"] == "HF_CACHE"
    assert defaults["keep_loaded_minutes"] == 10
    assert not defaults["low_memory"] and not defaults["fast_start_cache"]


def test_random_seed_operator_changes_the_seed_within_range(addon):
    settings = bpy.context.scene.partpacker
    seeds = set()
    for _ in range(3):
        bpy.ops.partpacker.random_seed()
        seeds.add(settings.seed)
    assert len(seeds) > 1
    assert all(0 <= seed < 2**31 - 1 for seed in seeds)
