"""The stand-in of the public Space (tests/space_standin.py), checked as its clients will use it:
its API is the Space's, and its GLB is laid out as the Space's."""

from __future__ import annotations

import numpy as np
import trimesh
from gradio_client import Client, handle_file
from space_signature import SPACE_ENDPOINTS, SPACE_RANGES, glb_tree, served_ranges, served_signature

from backend.parts import PALETTE


def test_its_api_is_the_spaces(space_standin: str) -> None:
    api = Client(space_standin, verbose=False).view_api(print_info=False, return_format="dict")
    assert served_signature(api) == SPACE_ENDPOINTS
    assert served_ranges(api) == {name: tuple(map(float, r)) for name, r in SPACE_RANGES.items()}


def test_the_spaces_snippets_run_and_the_glb_is_laid_out_as_the_spaces(
    space_standin: str, object_image, tmp_path
) -> None:
    client = Client(space_standin, download_files=tmp_path, verbose=False)
    segmentation = client.predict(
        image_path=handle_file(str(object_image)), api_name="/process_image"
    )
    seed = client.predict(randomize_seed=False, seed=42, api_name="/get_random_seed")
    glb = client.predict(
        input_image=handle_file(segmentation),
        num_steps=50,
        cfg_scale=7,
        grid_res=384,
        seed=seed,
        simplify_mesh=False,
        target_num_faces=100000,
        api_name="/process_3d",
    )
    assert seed == 42
    tree = glb_tree(glb)
    assert "materials" not in tree
    assert len(tree["nodes"]) == len(tree["meshes"]) == 5, "a top and four legs"
    for node in tree["nodes"]:
        (primitive,) = tree["meshes"][node["mesh"]]["primitives"]
        assert {"POSITION", "COLOR_0"} <= set(
            primitive["attributes"]
        ) and "material" not in primitive
    scene = trimesh.load(glb, force="scene")
    meshes = [scene.geometry[name] for name in sorted(scene.geometry)]
    colors = [tuple(mesh.visual.vertex_colors[0]) for mesh in meshes]
    assert colors == list(PALETTE[:5]), "each part one colour of the demo's palette"
    top, *legs = meshes
    assert top.bounds[0][1] > max(leg.bounds[1][1] for leg in legs) - 1e-6, "Y up: legs below"
    assert np.ptp(top.bounds[:, 1]) < np.ptp(top.bounds[:, 0]), "the top is flat in Y"
