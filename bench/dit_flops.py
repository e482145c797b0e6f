"""FLOPs of the full-size DiT's sampling, counted (not timed) on the meta device: no weights, no
memory, any machine.

    python bench/dit_flops.py              # the app's defaults: 50 steps, both halves of CFG
    python bench/dit_flops.py --steps 25

Counts torch's FlopCounterMode (matrix products and attention, 2 FLOPs per multiply-add) for one
guided step of the released configuration (batch 2 = cond and uncond, 8192 latent tokens,
1370 condition tokens), with the image condition's cross-attention keys and values recomputed at
every step (the official sampler) and computed once per job (ours), and prints the job's totals.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.models import DINOv2Config, DiT

TERA = 1e12


def counted(work) -> int:
    with FlopCounterMode(display=False) as counter:
        work()
    return counter.get_total_flops()


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    with torch.device("meta"):
        dit = DiT().to(torch.bfloat16)
        config = dit.config
        condition_tokens = DINOv2Config().num_patches + 1
        x = torch.zeros(2, config.sequence_length, config.latent_dim, dtype=torch.bfloat16)
        cond = torch.zeros(2, condition_tokens, config.hidden_dim, dtype=torch.bfloat16)
        t = torch.zeros(2)
        cond_kv = dit.condition_keys_values(cond)
        recomputing_step = counted(lambda: dit(x, cond, t))
        cached_step = counted(lambda: dit(x, None, t, cond_kv))
        once = counted(lambda: dit.condition_keys_values(cond))
    official = recomputing_step * args.steps
    ours = cached_step * args.steps + once
    print(
        f"full-size DiT, batch 2 x {config.sequence_length} tokens, "
        f"{condition_tokens} condition tokens"
    )
    print(f"  one step, keys/values recomputed: {recomputing_step / TERA:10.3f} TFLOP")
    print(f"  one step, keys/values given:      {cached_step / TERA:10.3f} TFLOP")
    print(f"  keys/values of the condition:     {once / TERA:10.3f} TFLOP")
    print(f"  {args.steps} steps, official (per step): {official / TERA:10.3f} TFLOP")
    print(f"  {args.steps} steps, ours (once per job): {ours / TERA:10.3f} TFLOP")
    print(
        f"  saved per job: {(official - ours) / TERA:.3f} TFLOP "
        f"({100 * (official - ours) / official:.2f}% of the sampler's FLOPs)"
    )


if __name__ == "__main__":
    main()
