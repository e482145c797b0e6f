"""Converted checkpoint copies: the same weights, mapped from safetensors, rebuilt when stale."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from backend.models import DiT
from backend.pipeline import ModelConfigs
from backend.weight_cache import cache_path, load_weights_cached
from backend.weights import load_weights


def meta_dit(configs: ModelConfigs) -> DiT:
    with torch.device("meta"):
        return DiT(configs.dit)


@pytest.fixture
def configs(tiny_weights: Path) -> ModelConfigs:
    return ModelConfigs.from_file(tiny_weights / "model_config.json")


def test_cached_load_equals_the_direct_load(tiny_weights: Path, configs, tmp_path: Path) -> None:
    flow = tiny_weights / "flow.pt"
    direct = load_weights(
        meta_dit(configs), flow, prefix="dit.", dtype=torch.bfloat16, device="cpu"
    )

    def load_cached() -> torch.nn.Module:
        return load_weights_cached(
            meta_dit(configs),
            flow,
            cache_dir=tmp_path,
            prefix="dit.",
            dtype=torch.bfloat16,
            device="cpu",
        )

    first = load_cached()
    cached = cache_path(flow, torch.bfloat16, tmp_path)
    assert cached.is_file() and cached.suffix == ".safetensors"
    second = load_cached()
    for module in (first, second):
        for (key, value), expected in zip(
            module.state_dict().items(), direct.state_dict().values(), strict=True
        ):
            assert value.dtype == torch.bfloat16, key
            assert torch.equal(value, expected), key


def test_a_changed_source_or_a_broken_cache_is_converted_again(
    tiny_weights: Path, configs, tmp_path: Path
) -> None:
    flow = tmp_path / "flow.pt"
    flow.write_bytes((tiny_weights / "flow.pt").read_bytes())
    cache = tmp_path / "cache"
    load_weights_cached(
        meta_dit(configs), flow, cache_dir=cache, prefix="dit.", dtype=torch.float32, device="cpu"
    )
    old = cache_path(flow, torch.float32, cache)
    old.write_bytes(b"not safetensors")
    module = load_weights_cached(
        meta_dit(configs), flow, cache_dir=cache, prefix="dit.", dtype=torch.float32, device="cpu"
    )
    assert not any(p.is_meta for p in module.parameters())
    assert old.read_bytes()[:8] != b"not safe"
    os.utime(flow, ns=(1, 1))
    assert cache_path(flow, torch.float32, cache) != old
