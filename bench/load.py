"""Cold-start benchmark: loading the three checkpoints as published vs from the converted cache.

    python bench/load.py                 # CUDA: full-size checkpoints; elsewhere: medium ones
    python bench/load.py --size full --folder /big/disk

Random float32 checkpoints in the published layout are written first (flow.pt with `dit.` keys,
vae.pt wrapped in {"model": ...}, the DINOv2 safetensors); then each way of loading runs in a
fresh process so no page cache of Python objects is shared, and the table shows seconds and the
ratio. The first load also checks the files' bytes (backend/weights/integrity.py); the later
ones find them in the record of checked files and skip that. The OS file cache is warm for all
(the files were just written), which favours none.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from tiny_weights import vae_encoder_state  # noqa: E402

from backend.device import choose_placement  # noqa: E402
from backend.models import VAE, DINOv2, DiT  # noqa: E402
from backend.pipeline import ModelConfigs  # noqa: E402
from backend.weights.integrity import RECORD_ENV  # noqa: E402

MEDIUM = {
    "dit": {"hidden_dim": 768, "num_heads": 12, "num_layers": 12, "latent_size": 1024},
    "vae": {"num_dec_layers": 8, "latent_size": 1024},
    "dinov2": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12},
}


def write_checkpoints(folder: Path, configs: ModelConfigs) -> None:
    generator = torch.Generator().manual_seed(0)

    def random_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
        return {
            key: torch.randn(value.shape, generator=generator) * 0.02
            for key, value in module.state_dict().items()
        }

    with torch.device("meta"):
        dit, vae, dino = DiT(configs.dit), VAE(configs.vae), DINOv2(configs.dinov2)
    torch.save({f"dit.{k}": v for k, v in random_state(dit).items()}, folder / "flow.pt")
    encoder = vae_encoder_state(configs.vae, generator)  # in vae.pt, skipped when loading
    torch.save({"model": {**encoder, **random_state(vae)}}, folder / "vae.pt")
    save_file(random_state(dino), folder / "model.safetensors")


def timed_load(folder: Path, config: Path | None, cache: Path | None, device: str) -> float:
    """Load all three models in a fresh process; returns its load time in seconds."""
    code = (
        "import sys, time, torch; sys.path.insert(0, sys.argv[1]);"
        "from pathlib import Path;"
        "from backend.pipeline import PartPackerPipeline, PipelineSettings;"
        "s = PipelineSettings(weights_dir=Path(sys.argv[2]), model_config=sys.argv[3] or None,"
        " weights_cache=sys.argv[4] and Path(sys.argv[4]) or None, device=sys.argv[5]);"
        "p = PartPackerPipeline(s); t = time.perf_counter(); p.load();"
        "torch.cuda.synchronize() if torch.cuda.is_available() else None;"
        "print(time.perf_counter() - t)"
    )
    args = [str(ROOT), str(folder), str(config or ""), str(cache or ""), device]
    output = subprocess.run(
        [sys.executable, "-c", code, *args],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, RECORD_ENV: str(folder / "verified-weights.json")},
    ).stdout
    return float(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--size", choices=["full", "medium"], default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--folder", type=Path, default=None, help="where to write the checkpoints")
    args = parser.parse_args()
    placement = choose_placement(args.device)
    size = args.size or ("full" if placement.device.type == "cuda" else "medium")
    with tempfile.TemporaryDirectory(dir=args.folder) as scratch:
        folder = Path(scratch)
        config = None
        if size == "medium":
            config = folder / "model_config.json"
            config.write_text(json.dumps(MEDIUM))
        configs = ModelConfigs.from_file(config)
        start = time.perf_counter()
        write_checkpoints(folder, configs)
        size_gb = sum(p.stat().st_size for p in folder.glob("*.*") if p.suffix != ".json") / 1e9
        print(
            f"{size} checkpoints ({size_gb:.2f} GB, float32) written in "
            f"{time.perf_counter() - start:.1f} s; loading as {placement.dtype} on "
            f"{placement.device}, torch {torch.__version__}"
        )
        cache = folder / "cache"
        device = str(placement.device.type)
        checking = timed_load(folder, config, None, device)
        published = timed_load(folder, config, None, device)
        converting = timed_load(folder, config, cache, device)
        cached = timed_load(folder, config, cache, device)
    print(f"\n{'load':<40}{'seconds':>10}{'vs published':>14}")
    for name, seconds in [
        ("published files, first (integrity check)", checking),
        ("published files", published),
        ("first cached load (converts)", converting),
        ("converted cache", cached),
    ]:
        print(f"{name:<40}{seconds:>10.2f}{published / seconds:>13.2f}x")


if __name__ == "__main__":
    main()
