"""Whole-pipeline benchmark: the official app's choices against ours, back to back, one device.

    python bench/pipeline.py                  # CUDA: full-size models; elsewhere: medium smoke run
    python bench/pipeline.py --size full --grid-res 384 --steps 50
    python bench/pipeline.py --counts-only    # decode query counts and FLOPs at 384 only

Random weights stand in for the checkpoints. The "official" mode is NOT the official code: it
is our code making the official decoder's choices (emulation), so that the two differ only in
those choices. Modes:
  official   (emulation) everything resident, the hierarchical strategy, query chunks of 8192,
             the query's keys and values recomputed for every chunk, one volume after the other
             (the last chunk of a level is padded to 8192, which the official code does not do)
  ours       the exact strategy (the official grid, no point queried twice), chunks sized from
             free memory, keys/values once per volume, both volumes through the decoder at once
  ours-fast  ours with the fast strategy (narrower finest band; may differ from the official mesh)
  ours-lowmem  ours with each network on the device only while it runs, query chunks bounded
  ours-compiled  ours with the DiT through torch.compile; a first job compiles (timed apart)
Prints per-stage seconds, FLOPs per stage (PyTorch's flop counter) and peak device memory, and
the ratios of ours to official; then the full-size VAE decode's query counts and FLOPs at 384.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "backend")]

from reference import analytic_occupancy  # noqa: E402
from tiny_weights import randomize, sampled_latents, shape_vae_field  # noqa: E402

from backend.decoding import (  # noqa: E402
    MIN_RESOLUTION,
    STRATEGIES,
    decode_field,
    decode_steps,
)
from backend.decoding.queries import MAX_CHUNK_SIZE  # noqa: E402
from backend.device import choose_placement  # noqa: E402
from backend.models import VAE, DINOv2, DINOv2Config, DiT, DiTConfig, VAEConfig  # noqa: E402
from backend.params import GenerationParams  # noqa: E402
from backend.pipeline import Models, PartPackerPipeline, PipelineSettings, Progress  # noqa: E402

MEDIUM = {
    "dit": DiTConfig(hidden_dim=384, num_heads=6, num_layers=6, latent_size=1024),
    "vae": VAEConfig(
        hidden_dim=256,
        num_heads=4,
        num_dec_layers=4,
        dec_hidden_dim=256,
        dec_num_heads=4,
        query_hidden_dim=256,
        query_num_heads=4,
        latent_size=1024,
    ),
    "dinov2": DINOv2Config(hidden_size=384, num_hidden_layers=6, num_attention_heads=6),
}
FULL = {"dit": DiTConfig(), "vae": VAEConfig(), "dinov2": DINOv2Config()}
OFFICIAL_CHUNK = 8192
MODES = {
    "official": PipelineSettings(decode_strategy="hierarchical"),
    "ours": PipelineSettings(),
    "ours-fast": PipelineSettings(decode_strategy="fast"),
    "ours-lowmem": PipelineSettings(low_memory=True),
    "ours-compiled": PipelineSettings(compile_dit=True),
}
EXAMPLE = ROOT / "examples" / "robot.png"


def random_models(size: str, device: torch.device, dtype: torch.dtype) -> Models:
    """Seeded random weights shaped like tests/tiny_weights.py: a smooth field with an inside."""
    configs = FULL if size == "full" else MEDIUM
    generator = torch.Generator().manual_seed(0)
    dit, vae, dino = DiT(configs["dit"]), VAE(configs["vae"]), DINOv2(configs["dinov2"])
    for module in (dit, vae, dino):
        randomize(module.eval(), generator)
    dit, vae, dino = (module.to(device, dtype) for module in (dit, vae, dino))
    shape_vae_field(vae, sampled_latents(dit, dino, generator))
    return Models(dinov2=dino, dit=dit, vae=vae)


class OfficialChoicesPipeline(PartPackerPipeline):
    """Our pipeline decoding as the official app does: one volume after the other, each chunk
    of OFFICIAL_CHUNK points recomputing the query's keys and values."""

    def _decode(self, vae: VAE, latent: torch.Tensor, resolution: int, clock) -> list:
        strategy = STRATEGIES["hierarchical"]
        total = decode_steps(strategy, resolution)
        grids = []
        with clock.stage("decode", total) as step:
            for index, volume in enumerate(latent.chunk(2, dim=1)):
                with torch.no_grad():
                    hidden = vae.decode(volume)

                def field(points: torch.Tensor, hidden: torch.Tensor = hidden) -> torch.Tensor:
                    with torch.no_grad():
                        return vae.query(points[None], hidden)[0, :, 0]

                def on_step(done: int, _: int, first: int = index * total // 2) -> None:
                    step(first + done, total)

                decoded = decode_field(
                    field,
                    resolution,
                    MIN_RESOLUTION,
                    strategy,
                    chunk_size=OFFICIAL_CHUNK,
                    device=latent.device,
                    on_step=on_step,
                    should_cancel=clock.should_cancel,
                )
                grids.append(decoded.grid.cpu().numpy())
        return grids


class StageMeter:
    """Splits FLOPs and peak memory by stage, using the pipeline's progress events."""

    def __init__(self, counter: FlopCounterMode, device: torch.device) -> None:
        self.counter, self.device = counter, device
        self.flops: dict[str, int] = {}
        self.stage: str | None = None
        self.mark = 0

    def __call__(self, event: Progress) -> None:
        if event.stage != self.stage:
            self.close()
            self.stage, self.mark = event.stage, self.counter.get_total_flops()

    def close(self) -> None:
        if self.stage is not None:
            done = self.counter.get_total_flops() - self.mark
            self.flops[self.stage] = self.flops.get(self.stage, 0) + done


def warm_up(models: Models, args: argparse.Namespace, output: Path) -> None:
    """One small untimed job first, so that no mode pays the process's one-time start-up costs
    (kernel libraries, allocator, rembg session, the flop counter's set-up)."""
    pipeline = PartPackerPipeline(PipelineSettings(device=args.device), models)
    params = GenerationParams(steps=1, grid_res=32, seed=0, randomize_seed=False)
    with FlopCounterMode(display=False):
        pipeline.generate(EXAMPLE, output / "warm-up", params)


def run_mode(name: str, models: Models, args: argparse.Namespace, output: Path) -> dict:
    settings = dataclasses.replace(MODES[name], device=args.device)
    kind = OfficialChoicesPipeline if name == "official" else PartPackerPipeline
    pipeline = kind(settings, models)
    device = pipeline.placement.device
    networks = (models.dinov2, models.dit, models.vae)
    if settings.low_memory:  # where the pipeline keeps them in this mode: in host memory
        for network in networks:
            network.to("cpu")
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    params = GenerationParams(
        steps=args.steps, grid_res=args.grid_res, seed=0, randomize_seed=False
    )
    warmup = 0.0
    if settings.compile_dit:
        start = time.perf_counter()
        pipeline.generate(EXAMPLE, output / f"{name}-warmup", params)
        warmup = time.perf_counter() - start
    counter = FlopCounterMode(display=False)
    meter = StageMeter(counter, device)
    start = time.perf_counter()
    with counter:
        result = pipeline.generate(EXAMPLE, output / name, params, on_progress=meter)
    meter.close()
    total = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    for network in networks:
        network.to(device)
    return {
        "timings": result.timings,
        "flops": meter.flops,
        "total": total,
        "peak": peak,
        "parts": len(result.parts),
        "warmup": warmup,
    }


def print_table(results: dict[str, dict]) -> None:
    stages = ["prepare", "condition", "sample", "decode", "extract", "postprocess", "export"]
    names = list(results)

    def row(label: str, cells: list[tuple[str, str]]) -> None:
        print(f"{label:<12}" + "".join(f"{a:>12}{b:>12}" for a, b in cells))

    labels = {"official": "official (emulation)"}
    print(f"\n{'':<12}" + "".join(f"{labels.get(name, name):>24}" for name in names))
    row("stage", [("s", "TFLOP")] * len(names))
    for stage in stages:
        row(
            stage,
            [
                (
                    f"{results[n]['timings'].get(stage, 0):.3f}",
                    f"{results[n]['flops'].get(stage, 0) / 1e12:.3f}",
                )
                for n in names
            ],
        )
    row(
        "total",
        [
            (f"{results[n]['total']:.3f}", f"{sum(results[n]['flops'].values()) / 1e12:.3f}")
            for n in names
        ],
    )
    row("peak GiB", [(f"{results[n]['peak'] / 2**30:.2f}", "") for n in names])
    row("parts", [(str(results[n]["parts"]), "") for n in names])
    for name in names:
        if results[name]["warmup"]:
            first, later = results[name]["warmup"], results[name]["total"]
            print(f"{name}: first job {first:.3f} s, so compiling took about {first - later:.3f} s")
    official = results["official"]
    for name in names[1:]:
        ours = results[name]
        print(
            f"\n{name} / official (emulation): time {ours['total'] / official['total']:.2f}x, "
            f"decode time {ours['timings']['decode'] / official['timings']['decode']:.2f}x, "
            f"decode FLOPs {ours['flops']['decode'] / official['flops']['decode']:.2f}x"
            + (f", peak memory {ours['peak'] / official['peak']:.2f}x" if official["peak"] else "")
        )


def flops_of(function) -> int:
    with FlopCounterMode(display=False) as counter:
        function()
    return counter.get_total_flops()


def padded(counts: list[int], chunk: int) -> int:
    """Points sent to the field when each level's last chunk is padded to `chunk`."""
    return sum(-(-count // chunk) * chunk for count in counts)


def print_decode_flops(resolution: int = 384) -> None:
    """Full-size VAE decode FLOPs for one volume, counted on the meta device: the decoder once,
    the query keys/values per chunk (official) or once (ours), and the per-point query, times
    the points each strategy queries on the reference's analytic sphere+box volume."""
    with torch.device("meta"):
        vae = VAE()
        latent = torch.empty(1, vae.config.latent_size, vae.config.latent_dim)
        hidden = torch.empty(1, vae.config.latent_size, vae.config.dec_hidden_dim)
        context = vae.query_context(hidden)
        points = torch.empty(1, OFFICIAL_CHUNK, 3)
    decoder = flops_of(lambda: vae.decode(latent))
    keys_values = flops_of(lambda: vae.query_context(hidden))
    per_point = flops_of(lambda: vae.query_with_context(points, context)) / OFFICIAL_CHUNK
    counts = {
        name: decode_field(
            analytic_occupancy, resolution, MIN_RESOLUTION, STRATEGIES[name], chunk_size=1 << 20
        ).queried
        for name in ("hierarchical", "exact", "fast")
    }
    official = counts["hierarchical"]
    chunks = sum(-(-count // OFFICIAL_CHUNK) for count in official)
    rows = [
        (
            "official (emulation)",
            official,
            decoder + chunks * keys_values + sum(official) * per_point,
        )
    ]
    for name in ("exact", "fast"):
        for chunk in (OFFICIAL_CHUNK, MAX_CHUNK_SIZE, 1 << 20):
            queried = padded(counts[name], chunk)
            label = f"{name}, chunks {chunk}"
            rows.append((label, counts[name], decoder + keys_values + queried * per_point))
    print(f"\nfull-size VAE decode of one volume at grid {resolution} (analytic reference volume)")
    print(f"per-point query {per_point / 1e6:.2f} MFLOP, keys/values {keys_values / 1e9:.1f} GFLOP")
    print(f"{'':<24}{'points per level':>34}{'points':>11}{'TFLOP':>8}{'/ official':>11}")
    for label, levels, flops in rows:
        print(
            f"{label:<24}{levels!s:>34}{sum(levels):>11}{flops / 1e12:>8.1f}"
            f"{flops / rows[0][2]:>10.2f}x"
        )
    print("(official: our code in the official decoder's emulation mode, unpadded chunks of 8192;")
    print(" exact and fast pad each level's last chunk; counted at 8192 points a chunk (CPU),")
    print(" 2^18 (the most the product uses on a GPU) and 2^20)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--size", choices=["full", "medium"], default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--grid-res", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument(
        "--counts-only", action="store_true", help="only the decode query counts and FLOPs"
    )
    args = parser.parse_args()
    if args.counts_only:
        print_decode_flops()
        return
    placement = choose_placement(args.device)
    on_gpu = placement.device.type == "cuda"
    args.size = args.size or ("full" if on_gpu else "medium")
    args.grid_res = args.grid_res or (384 if on_gpu else 128)
    args.steps = args.steps or (50 if on_gpu else 4)
    name = torch.cuda.get_device_name() if on_gpu else "CPU"
    print(
        f"{args.size} models on {name} ({placement.dtype}), grid {args.grid_res}, "
        f"{args.steps} steps, torch {torch.__version__}"
    )
    models = random_models(args.size, placement.device, placement.dtype)
    with tempfile.TemporaryDirectory() as folder:
        warm_up(models, args, Path(folder))
        results = {mode: run_mode(mode, models, args, Path(folder)) for mode in args.modes}
    print_table(results)
    print_decode_flops()


if __name__ == "__main__":
    main()
