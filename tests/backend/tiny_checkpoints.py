"""Tiny modules in the official checkpoint layouts, and folders and hub caches filled with
them: flow.pt under `dit.`, vae.pt wrapped in {"model": ...}, DINOv2 in the hub's safetensors
names."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from backend.weights import WeightFiles


class FlowLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn1 = nn.Module()
        self.attn1.qkv_proj = nn.Linear(8, 24)
        self.adaln_linear = nn.Linear(8, 16)


class TinyFlow(nn.Module):
    """Keys as in flow.pt once `dit.` is stripped: proj_in, layers.0.attn1.qkv_proj, ..."""

    def __init__(self) -> None:
        super().__init__()
        self.proj_in = nn.Linear(4, 8)
        self.layers = nn.ModuleList([FlowLayer(), FlowLayer()])
        self.proj_out = nn.Linear(8, 4)


class TinyVAE(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj_up = nn.Linear(4, 8)
        self.decoder = nn.ModuleList([nn.Linear(8, 8), nn.Linear(8, 8)])
        self.proj_out = nn.Linear(8, 1)


class TinyDINOv2(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embeddings = nn.Module()
        self.embeddings.patch_embeddings = nn.Module()
        self.embeddings.patch_embeddings.projection = nn.Conv2d(3, 8, 2, stride=2)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList([nn.Module()])
        self.encoder.layer[0].attention = nn.Module()
        self.encoder.layer[0].attention.attention = nn.Module()
        self.encoder.layer[0].attention.attention.query = nn.Linear(8, 8)
        self.encoder.layer[0].attention.attention.key = nn.Linear(8, 8)


def random_state(module_class: type[nn.Module], seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return {key: value.detach().clone() for key, value in module_class().state_dict().items()}


def flow_state(dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    return {f"dit.{key}": value.to(dtype) for key, value in random_state(TinyFlow).items()}


def on_meta(module_class: type[nn.Module]) -> nn.Module:
    with torch.device("meta"):
        return module_class()


def assert_loaded(module: nn.Module, expected: dict[str, torch.Tensor], dtype: torch.dtype):
    loaded = module.state_dict()
    assert loaded.keys() == expected.keys()
    for key, value in expected.items():
        assert loaded[key].device.type == "cpu"
        assert loaded[key].dtype == dtype
        torch.testing.assert_close(loaded[key], value.to(dtype), rtol=0, atol=0)
    assert not module.training


def fill_folder(folder: Path, dinov2_name: str = "model.safetensors") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(flow_state(), folder / "flow.pt")
    torch.save({"model": random_state(TinyVAE)}, folder / "vae.pt")
    (folder / dinov2_name).parent.mkdir(parents=True, exist_ok=True)
    save_file(random_state(TinyDINOv2), folder / dinov2_name)


PARTPACKER_COMMIT = "a" * 40
DINOV2_COMMIT = "b" * 40


def fill_hub_cache(cache: Path) -> WeightFiles:
    """The Hugging Face cache layout: models--ORG--NAME/{refs/main, snapshots/COMMIT/FILE}."""
    partpacker = cache / "models--nvidia--PartPacker"
    dinov2 = cache / "models--facebook--dinov2-giant"
    for repo, commit in ((partpacker, PARTPACKER_COMMIT), (dinov2, DINOV2_COMMIT)):
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text(commit)
    flow = partpacker / "snapshots" / PARTPACKER_COMMIT / "flow.pt"
    vae = partpacker / "snapshots" / PARTPACKER_COMMIT / "vae.pt"
    model = dinov2 / "snapshots" / DINOV2_COMMIT / "model.safetensors"
    flow.parent.mkdir(parents=True)
    model.parent.mkdir(parents=True)
    torch.save(flow_state(), flow)
    torch.save({"model": random_state(TinyVAE)}, vae)
    save_file(random_state(TinyDINOv2), model)
    return WeightFiles(flow, vae, model)
