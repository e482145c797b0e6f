"""The CFG flow sampler against the official 4-step run."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from reference import config, tensors, tiny_dit

from backend.errors import Cancelled
from backend.sampling import initial_noise, sample, sigma_schedule


def test_sigma_schedule_and_timesteps() -> None:
    ref = tensors("flow_sampling/sampling_fp32.safetensors")
    sigmas = sigma_schedule(4, 3.0)
    assert sigmas.dtype == np.float64
    np.testing.assert_array_equal(sigmas, ref["sigmas"].numpy())
    np.testing.assert_array_equal(
        np.diff(-sigmas), config("flow_sampling/sampling_fp32.json")["step_deltas_float64"]
    )


def test_sample_reproduces_the_official_final_latent() -> None:
    ref = tensors("flow_sampling/sampling_fp32.safetensors")
    steps: list[tuple[int, int]] = []
    latent = sample(
        tiny_dit(), ref["cond"], ref["x0"], 4, 7.0, 3.0, on_step=lambda *s: steps.append(s)
    )
    assert latent.dtype == torch.float32
    torch.testing.assert_close(latent, ref["final_latent"], atol=1e-4, rtol=1e-4)
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_condition_keys_and_values_are_computed_once_per_job() -> None:
    """The image condition's keys and values are the same at every step: each layer's k and v
    projections run once per job, its query projection once per step, and the latent is
    bitwise the one of a sampler that recomputes them at every step."""
    ref = tensors("flow_sampling/sampling_fp32.safetensors")
    dit = tiny_dit()
    calls: Counter[str] = Counter()
    for name in ("k_proj", "v_proj", "q_proj"):
        projection = getattr(dit.layers[0].attn2, name)
        projection.register_forward_hook(lambda *_, name=name: calls.update([name]))
    latent = sample(dit, ref["cond"], ref["x0"], 4, 7.0, 3.0)
    assert calls == {"k_proj": 1, "v_proj": 1, "q_proj": 4}

    recomputing = tiny_dit()
    forward = recomputing.forward
    recomputing.forward = lambda x, cond, t, cond_kv=None: forward(
        x, torch.cat([ref["cond"], torch.zeros_like(ref["cond"])])[: len(x)], t
    )
    assert torch.equal(latent, sample(recomputing, ref["cond"], ref["x0"], 4, 7.0, 3.0))


def test_cancel_is_checked_before_every_step() -> None:
    ref = tensors("flow_sampling/sampling_fp32.safetensors")
    done: list[int] = []
    with pytest.raises(Cancelled):
        sample(
            tiny_dit(),
            ref["cond"],
            ref["x0"],
            4,
            7.0,
            on_step=lambda step, total: done.append(step),
            should_cancel=lambda: len(done) == 2,
        )
    assert done == [1, 2]


def test_seeded_noise_is_reproducible_and_seed_dependent() -> None:
    first, again = initial_noise(7, (1, 32, 8)), initial_noise(7, (1, 32, 8))
    other = initial_noise(8, (1, 32, 8))
    assert first.dtype == torch.float32
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    torch.manual_seed(7)
    assert torch.equal(first, torch.randn(1, 32, 8)), "a seed must give the global-RNG draw"


def test_guidance_over_part_of_the_schedule_saves_the_unconditional_half() -> None:
    ref = tensors("flow_sampling/sampling_fp32.safetensors")
    dit = tiny_dit()
    batches: list[int] = []
    dit.register_forward_pre_hook(lambda module, args: batches.append(args[0].shape[0]))
    full = sample(dit, ref["cond"], ref["x0"], 4, 7.0, guidance_steps=4)
    torch.testing.assert_close(full, ref["final_latent"], atol=1e-4, rtol=1e-4)
    batches.clear()
    partial = sample(dit, ref["cond"], ref["x0"], 4, 7.0, guidance_steps=2)
    assert batches == [2, 2, 1, 1]
    assert not torch.allclose(partial, full)
