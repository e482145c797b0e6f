"""Reading checkpoints: good files in every format load, bad ones are refused naming the file."""

from __future__ import annotations

import os
import pickle
import random
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from tiny_checkpoints import (
    TinyDINOv2,
    TinyFlow,
    TinyVAE,
    assert_loaded,
    flow_state,
    on_meta,
    random_state,
)

from backend.errors import WeightsError
from backend.weights import (
    check_state_dict,
    load_weights,
    read_layout,
    read_state_dict,
)

# --- loading good files --------------------------------------------------------------------------


@pytest.mark.parametrize("file_dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_flow_pickle_in_any_float_dtype_loads_into_a_meta_module(
    tmp_path: Path, file_dtype: torch.dtype
) -> None:
    state = flow_state(file_dtype)
    torch.save(state, tmp_path / "flow.pt")
    module = load_weights(
        on_meta(TinyFlow), tmp_path / "flow.pt", prefix="dit.", dtype=torch.float32, device="cpu"
    )
    expected = {key.removeprefix("dit."): value for key, value in state.items()}
    assert_loaded(module, expected, torch.float32)


@pytest.mark.parametrize("wrapper", ["model", "state_dict"])
def test_wrapped_vae_pickle_is_unwrapped(tmp_path: Path, wrapper: str) -> None:
    state = random_state(TinyVAE, seed=1)
    torch.save({wrapper: state, "epoch": 12, "note": "trained"}, tmp_path / "vae.pt")
    module = load_weights(on_meta(TinyVAE), tmp_path / "vae.pt", dtype=torch.bfloat16, device="cpu")
    assert_loaded(module, state, torch.bfloat16)


def test_safetensors_dinov2_loads_and_converts(tmp_path: Path) -> None:
    state = {key: value.half() for key, value in random_state(TinyDINOv2, seed=2).items()}
    save_file(state, tmp_path / "model.safetensors")
    module = load_weights(
        on_meta(TinyDINOv2), tmp_path / "model.safetensors", dtype=torch.bfloat16, device="cpu"
    )
    assert_loaded(module, state, torch.bfloat16)


def test_pre_zip_torch_format_loads_without_mmap(tmp_path: Path) -> None:
    state = flow_state()
    torch.save(state, tmp_path / "flow.pt", _use_new_zipfile_serialization=False)
    read = read_state_dict(tmp_path / "flow.pt")
    assert read.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(read[key], value)


def test_loaded_module_really_computes_with_the_file_weights(tmp_path: Path) -> None:
    state = random_state(TinyVAE, seed=3)
    torch.save({"model": state}, tmp_path / "vae.pt")
    module = load_weights(on_meta(TinyVAE), tmp_path / "vae.pt", dtype=torch.float32, device="cpu")
    x = torch.randn(2, 4)
    expected = x @ state["proj_up.weight"].T + state["proj_up.bias"]
    torch.testing.assert_close(module.proj_up(x), expected)


@pytest.mark.parametrize("writer", ["torch", "safetensors"])
def test_layout_reads_keys_shapes_and_dtypes_without_the_data(tmp_path: Path, writer: str):
    state = flow_state(torch.bfloat16)
    path = tmp_path / "flow.pt"
    if writer == "torch":
        torch.save(state, path)
    else:
        save_file(state, path)
    layout = read_layout(path)
    assert layout.keys() == state.keys()
    for key, value in layout.items():
        assert value.is_meta
        assert (value.shape, value.dtype) == (state[key].shape, torch.bfloat16)


def test_layout_is_enough_to_spot_a_mixup(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_file(random_state(TinyVAE), path)
    expected = {key: value.shape for key, value in random_state(TinyDINOv2).items()}
    with pytest.raises(WeightsError, match=re.escape("looks like vae.pt")):
        check_state_dict(read_layout(path), expected, file=path, what="DINOv2")


def test_layout_of_a_broken_header_is_a_weights_error(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_file(random_state(TinyDINOv2), path)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(WeightsError, match="truncated or corrupt"):
        read_layout(path)


# --- refusing bad files --------------------------------------------------------------------------


def write_truncated_pickle(path: Path) -> None:
    torch.save(flow_state(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def write_truncated_safetensors(path: Path) -> None:
    save_file(random_state(TinyDINOv2), path)
    path.write_bytes(path.read_bytes()[:-100])


def write_random_bytes(path: Path) -> None:
    path.write_bytes(b"\x17" + random.Random(7).randbytes(4096))


BROKEN_FILES = {
    "truncated pickle": (write_truncated_pickle, "truncated or corrupt"),
    "truncated safetensors": (write_truncated_safetensors, "truncated or corrupt"),
    "random bytes": (write_random_bytes, "not a checkpoint"),
    "empty": (lambda path: path.write_bytes(b""), "is empty"),
    "text": (lambda path: path.write_text("version https://git-lfs\nsize 5\n"), "not a checkpoint"),
}


@pytest.mark.parametrize("case", BROKEN_FILES)
def test_broken_file_is_a_weights_error_naming_it(tmp_path: Path, case: str) -> None:
    write, phrase = BROKEN_FILES[case]
    path = tmp_path / "broken.bin"
    write(path)
    with pytest.raises(WeightsError) as caught:
        read_state_dict(path)
    assert str(path) in caught.value.message
    assert phrase in caught.value.message
    assert caught.value.hint


def test_missing_file_is_a_weights_error(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="does not exist") as caught:
        load_weights(on_meta(TinyVAE), tmp_path / "vae.pt", dtype=torch.float32, device="cpu")
    assert str(tmp_path / "vae.pt") in caught.value.message


class MakesDirectory:
    """Unpickling this would create a directory: the marker that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_checkpoint_with_code_is_refused_and_the_code_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "code_ran"
    path = tmp_path / "flow.pt"
    torch.save({"dit.proj_in.weight": torch.ones(2), "payload": MakesDirectory(marker)}, path)
    with pytest.raises(WeightsError, match=r"refusing to load .* contains code") as caught:
        read_state_dict(path)
    assert str(path) in caught.value.message
    assert not marker.exists()
    # The payload is real: an unsafe load would have run it.
    torch.load(path, weights_only=False)
    assert marker.is_dir()


def test_plain_pickle_with_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "code_ran"
    path = tmp_path / "vae.pt"
    path.write_bytes(pickle.dumps({"model": MakesDirectory(marker)}, protocol=2))
    with pytest.raises(WeightsError, match="refusing to load"):
        read_state_dict(path)
    assert not marker.exists()


def test_non_tensor_values_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "flow.pt"
    torch.save({"dit.proj_in.weight": torch.ones(2), "dit.config": {"depth": 24}}, path)
    with pytest.raises(WeightsError, match=re.escape("dit.config")) as caught:
        read_state_dict(path)
    assert str(path) in caught.value.message


def test_integer_tensors_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_file({"embeddings.cls_token": torch.arange(6).reshape(1, 1, 6)}, path)
    with pytest.raises(WeightsError, match=r"non-floating-point.*embeddings\.cls_token"):
        read_state_dict(path)


def test_a_pickled_list_is_not_a_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "flow.pt"
    torch.save([torch.ones(3)], path)
    with pytest.raises(WeightsError, match="holds a list"):
        read_state_dict(path)
