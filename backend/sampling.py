"""Flow-matching Euler sampler with classifier-free guidance (reference README §3.4)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .errors import CancelCheck, Cancelled
from .models import DiT

DEFAULT_SHIFT = 3.0
StepCallback = Callable[[int, int], None]


def sigma_schedule(num_steps: int, shift: float) -> np.ndarray:
    """linspace(1, 0) in float64, shifted: σ ← shift·σ / (1 + (shift − 1)·σ)."""
    sigmas = np.linspace(1.0, 0.0, num_steps + 1)
    return shift * sigmas / (1 + (shift - 1) * sigmas)


def initial_noise(
    seed: int, shape: tuple[int, ...], device: torch.device | str = "cpu"
) -> torch.Tensor:
    """float32 N(0, 1) from a generator on `device` seeded with `seed`: the demo's noise for a seed
    on the same kind of device, before anything else random happens."""
    generator = torch.Generator(device=device).manual_seed(seed)
    return torch.randn(shape, generator=generator, device=device, dtype=torch.float32)


def float32_scalar(value: float) -> float:
    """Round a float64 schedule value to float32, as the reference arithmetic does."""
    return float(np.float32(value))


@torch.no_grad()
def sample(
    dit: DiT,
    cond: torch.Tensor,
    noise: torch.Tensor,
    num_steps: int,
    cfg_scale: float,
    shift: float = DEFAULT_SHIFT,
    *,
    guidance_steps: int | None = None,
    on_step: StepCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> torch.Tensor:
    """Integrate from `noise` (t = 1) to the final float32 latent (t = 0).

    Conditional and unconditional predictions run as one batch of two: [x; x] against
    [cond; zeros]. With `guidance_steps` set, only the first that many steps are guided and the
    rest take the conditional prediction alone, at half the cost (changes the result).
    `on_step(i, num_steps)` runs after each step; `should_cancel()` is checked before each step
    and raises `Cancelled`.
    """
    if noise.shape[0] != 1:
        raise ValueError(f"sampling takes one noise tensor at a time, got batch {noise.shape[0]}")
    dtype = dit.proj_in.weight.dtype
    sigmas = sigma_schedule(num_steps, shift)
    cond_pair = torch.cat([cond, torch.zeros_like(cond)]).to(dtype)
    pair_kv = dit.condition_keys_values(cond_pair)  # once per job: the same at every step
    cond_kv = [(keys[:1], values[:1]) for keys, values in pair_kv]
    guided = num_steps if guidance_steps is None else guidance_steps
    x = noise.float()
    for i in range(num_steps):
        if should_cancel is not None and should_cancel():
            raise Cancelled("generation cancelled during sampling")
        t = torch.full((2,), float32_scalar(1000 * sigmas[i]), device=x.device)
        if i < guided:
            v_pair = dit(torch.cat([x, x]).to(dtype), None, t, pair_kv).float()
            v_cond, v_uncond = v_pair.chunk(2)
            v = v_uncond + (v_cond - v_uncond) * cfg_scale
        else:
            v = dit(x.to(dtype), None, t[:1], cond_kv).float()
        x = x - float32_scalar(sigmas[i] - sigmas[i + 1]) * v
        if on_step is not None:
            on_step(i + 1, num_steps)
    return x
