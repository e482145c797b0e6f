"""`python -m backend web` spoken to as the public Space is: the real gradio_client, over
127.0.0.1, against the real server process with tiny weights."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import GRID_CAP, ServerProcess
from gradio_client import Client, handle_file
from gradio_client.client import Job
from gradio_client.exceptions import AppError
from gradio_client.utils import StatusUpdate
from PIL import Image
from space_signature import (
    SPACE_ENDPOINTS,
    SPACE_RANGES,
    glb_tree,
    served_ranges,
    served_signature,
)

from backend.params import GenerationParams
from backend.pipeline import PartPackerPipeline

MAX_SEED = 2**31 - 1
READABLE_STAGES = (
    "Removing the background",
    "Loading the models",
    "Reading the image",
    "Sampling",
    "Decoding the volumes",
    "Extracting the surfaces",
    "Splitting into parts",
    "Writing the GLB",
)
QUICK = {
    "num_steps": 2,
    "cfg_scale": 7,
    "grid_res": 256,
    "seed": 3,
    "simplify_mesh": False,
    "target_num_faces": 100000,
}


@pytest.fixture(scope="module")
def client(open_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Client:
    return Client(open_server.url, download_files=tmp_path_factory.mktemp("downloads"))


def test_the_spaces_own_snippets_run_verbatim(open_server: ServerProcess, object_image) -> None:
    """The three snippets of the Space's API page, the address and the image changed only."""
    from gradio_client import Client, handle_file

    client = Client(open_server.url)
    result = client.predict(
        image_path=handle_file(str(object_image)),
        api_name="/process_image",
    )
    print(result)
    segmentation = result

    client = Client(open_server.url)
    result = client.predict(
        randomize_seed=True,
        seed=0,
        api_name="/get_random_seed",
    )
    print(result)
    seed = result

    client = Client(open_server.url)
    result = client.predict(
        input_image=handle_file(str(object_image)),
        num_steps=50,
        cfg_scale=7,
        grid_res=384,
        seed=0,
        simplify_mesh=False,
        target_num_faces=100000,
        api_name="/process_3d",
    )
    print(result)

    with Image.open(segmentation) as image:
        assert (image.mode, image.size) == ("RGBA", (518, 518))
        alpha = np.asarray(image.getchannel("A"))
    rows, columns = np.nonzero(alpha)
    extent = max(rows.max() - rows.min(), columns.max() - columns.min()) + 1
    assert abs(extent - 0.9 * 518) <= 2, "the object's longer side is 90% of the square"
    assert abs((rows.min() + rows.max()) / 2 - 259) <= 2, "centred"
    assert alpha[0, 0] == 0, "the background is cut away"
    assert isinstance(seed, (int, float)) and 0 <= seed < MAX_SEED
    tree = glb_tree(result)
    assert len(tree["nodes"]) >= 2 and all("mesh" in node for node in tree["nodes"])


def test_the_api_is_the_spaces_name_for_name(client: Client) -> None:
    api = client.view_api(print_info=False, return_format="dict")
    assert served_signature(api) == SPACE_ENDPOINTS
    assert api["unnamed_endpoints"] == {}
    assert served_ranges(api) == {name: tuple(map(float, r)) for name, r in SPACE_RANGES.items()}


def test_a_generation_through_the_server_is_the_same_as_one_here(
    client: Client, object_image, tiny_pipeline: PartPackerPipeline, tmp_path
) -> None:
    """Same image, seed and parameters: the server's GLB is the one the pipeline writes."""
    glb = client.predict(handle_file(str(object_image)), *QUICK.values(), api_name="/process_3d")
    local = tiny_pipeline.generate(
        object_image,
        tmp_path / "local",
        GenerationParams(steps=2, grid_res=GRID_CAP, seed=3, randomize_seed=False),
    )
    served, expected = glb_tree(glb), glb_tree(local.glb)
    assert [node["name"] for node in served["nodes"]] == [p["name"] for p in local.parts]
    assert served["materials"] == expected["materials"]
    assert Path(glb).read_bytes() == local.glb.read_bytes()


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("num_steps", 0, "between 1 and 100, got 0"),
        ("num_steps", 101, "between 1 and 100, got 101"),
        ("num_steps", 2.5, "whole number, got 2.5"),
        ("cfg_scale", 1.5, "between 2 and 10, got 1.5"),
        ("cfg_scale", 10.5, "between 2 and 10, got 10.5"),
        ("grid_res", 255, "between 256 and 512, got 255"),
        ("grid_res", 513, "between 256 and 512, got 513"),
        ("seed", -1, "between 0 and 2147483647, got -1"),
        ("seed", 2**31, "between 0 and 2147483647, got 2147483648"),
        ("target_num_faces", 9999, "between 10000 and 1000000, got 9999"),
        ("simplify_mesh", "yes", "true or false, got 'yes'"),
        ("num_steps", "many", "must be a number, got 'many'"),
    ],
)
def test_values_out_of_range_are_refused_by_name(
    client: Client, rgba_object, name: str, value: object, words: str
) -> None:
    values = {**QUICK, name: value}
    with pytest.raises(AppError) as refused:
        client.predict(handle_file(str(rgba_object)), **values, api_name="/process_3d")
    assert f"{name} must be" in str(refused.value) and words in str(refused.value)
    assert refused.value.title == "bad_input", "the error code, as the worker's protocol has it"


def test_get_random_seed_keeps_a_given_seed_or_draws_a_new_one(client: Client) -> None:
    assert client.predict(False, 123456, api_name="/get_random_seed") == 123456
    drawn = {client.predict(True, 123456, api_name="/get_random_seed") for _ in range(3)}
    assert all(0 <= seed < MAX_SEED for seed in drawn)
    assert len(drawn) > 1, "three draws in 2^31 values are all different but once in ~10^9"
    with pytest.raises(AppError, match="seed must be between"):
        client.predict(False, -5, api_name="/get_random_seed")


def all_updates(job: Job) -> list[StatusUpdate]:
    """Every status update of a job, as gradio_client hands them out, until it ends."""

    async def collect() -> list[StatusUpdate]:
        return [update async for update in job if isinstance(update, StatusUpdate)]

    return asyncio.run(collect())


def test_a_grid_above_the_servers_cap_is_lowered_and_said(client: Client, rgba_object) -> None:
    job = client.submit(handle_file(str(rgba_object)), *QUICK.values(), api_name="/process_3d")
    notes = [update.log for update in all_updates(job) if update.log]
    assert job.result().endswith(".glb")
    assert [level for _, level in notes] == ["warning"], notes
    assert "grid_res 256 was lowered to it" in notes[0][0] and f"grid {GRID_CAP}" in notes[0][0]


def test_progress_comes_by_stage_with_readable_names(client: Client, rgba_object) -> None:
    job = client.submit(
        handle_file(str(rgba_object)), *{**QUICK, "num_steps": 60}.values(), api_name="/process_3d"
    )
    steps: dict[str, set[int]] = {}
    for update in all_updates(job):
        for unit in update.progress_data or []:
            steps.setdefault(unit.desc, set()).add(unit.index)
    assert job.result().endswith(".glb")
    assert len(steps.get("Sampling", ())) > 2 and max(steps["Sampling"]) <= 60, steps
    assert "Decoding the volumes" in steps, steps
    assert set(steps) <= set(READABLE_STAGES), steps


def test_every_result_is_a_file_of_its_own(open_server: ServerProcess, rgba_object) -> None:
    client = Client(open_server.url, download_files=False)
    first = client.predict(handle_file(str(rgba_object)), api_name="/process_image")
    second = client.predict(handle_file(str(rgba_object)), api_name="/process_image")
    assert first["path"] != second["path"]
    assert open_server.work_dir in Path(first["path"]).parents


def test_the_page_is_the_demos_wired_as_the_demo(open_server: ServerProcess) -> None:
    """Image in, the segmentation, the sliders, Generate, the 3D viewer, a download button."""
    page = httpx.get(open_server.url, headers={"Accept": "text/html"})
    assert page.status_code == 200
    config = httpx.get(open_server.url + "config").json()
    assert config["title"] == "PartPacker"
    ids = {}
    for component in config["components"]:
        props = component.get("props", {})
        ids[props.get("label") or props.get("value")] = (component["id"], component["type"])
    expected = {
        "Input Image": "image",
        "Segmentation Result": "image",
        "Inference steps": "slider",
        "CFG scale": "slider",
        "Grid resolution": "slider",
        "Seed": "slider",
        "Randomize seed": "checkbox",
        "Simplify mesh": "checkbox",
        "Face number": "slider",
        "Generate": "button",
        "Geometry": "model3d",
        "Download GLB": "downloadbutton",
    }
    assert {label: ids[label][1] for label in expected} == expected
    events = {dep.get("api_name") or f"#{dep['id']}": dep for dep in config["dependencies"]}
    image, segmentation = ids["Input Image"][0], ids["Segmentation Result"][0]
    assert events["process_image"]["targets"] == [[image, "upload"]]
    assert events["process_image"]["outputs"] == [segmentation]
    assert events["get_random_seed"]["targets"] == [[ids["Generate"][0], "click"]]
    assert events["process_3d"]["trigger_after"] == events["get_random_seed"]["id"]
    assert events["process_3d"]["inputs"][0] == segmentation
    download = [dep for dep in config["dependencies"] if dep["outputs"] == [ids["Download GLB"][0]]]
    assert len(download) == 1 and download[0]["trigger_after"] == events["process_3d"]["id"]
    assert download[0]["trigger_only_on_success"]
