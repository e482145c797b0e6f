"""A stand-in for the public nvidia/PartPacker Space, for tests that cannot reach the internet.

    python tests/space_standin.py --port 7861 [--host 127.0.0.1]

It has the Space's exact API as its API page shows it (three endpoints; parameter names, order,
defaults, labels and component types) and answers the way the Space does, without a model:

- /process_image: the object (its own alpha, or whatever differs from the corner colour) on a
  transparent 518x518 square, its longer side 90% of it.
- /get_random_seed: a new seed in [0, 2^31-1) when randomize_seed, else the given seed.
- /process_3d: a GLB laid out as the Space's: one node per part (trimesh's names,
  `geometry_0`...), each mesh with a COLOR_0 vertex colour (the part's palette colour) and no
  material, Y up. The parts are a table, built with trimesh: a top and four legs, so that a
  client can check the count, the colours and which way is up. Progress is reported per step.

Built as a Space is (gr.Blocks(...).launch()), from the Space's API text; none of our server's
code, so that the two can be compared.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import gradio as gr
import numpy as np
import trimesh
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.export import to_gltf_frame
from backend.image import recentre
from backend.parts import PALETTE

MAX_SEED = 2**31 - 1
BACKGROUND_TOLERANCE = 30
STEP_SECONDS = 0.01
TABLE_TOP = ((0.0, 0.0, 0.55), (1.6, 1.0, 0.1))
"""(centre, size) in the model frame, where z is up; the legs stand under the top's corners."""
LEG_SIZE = (0.1, 0.1, 0.5)
LEG_CORNERS = ((-0.7, -0.4), (0.7, -0.4), (-0.7, 0.4), (0.7, 0.4))


def table_parts() -> list[tuple[tuple[float, ...], tuple[float, ...]]]:
    legs = [((x, y, LEG_SIZE[2] / 2), LEG_SIZE) for x, y in LEG_CORNERS]
    return [TABLE_TOP, *legs]


def space_glb(path: Path) -> Path:
    """The table as the Space lays out its GLB: a node per part, COLOR_0, no material, Y up."""
    meshes = []
    for index, (centre, size) in enumerate(table_parts()):
        box = trimesh.creation.box(extents=size)
        vertices = to_gltf_frame(np.asarray(box.vertices) + centre)
        colors = np.tile(PALETTE[index % len(PALETTE)], (len(vertices), 1)).astype(np.uint8)
        mesh = trimesh.Trimesh(vertices, box.faces, process=False)
        mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=colors)
        meshes.append(mesh)
    path.write_bytes(trimesh.exchange.gltf.export_glb(trimesh.Scene(meshes)))
    return path


def cut_out(image: Image.Image) -> Image.Image:
    """The image's own alpha when it has some, else: transparent where it is the corner colour."""
    if image.mode == "RGBA" and np.asarray(image.getchannel("A")).min() < 255:
        return image
    rgb = np.asarray(image.convert("RGB")).astype(np.int16)
    distance = np.abs(rgb - rgb[0, 0]).max(axis=2)
    alpha = np.where(distance > BACKGROUND_TOLERANCE, 255, 0).astype(np.uint8)
    return Image.fromarray(np.dstack([rgb.astype(np.uint8), alpha]), "RGBA")


def process_image(image_path: str) -> str:
    if image_path is None:
        raise gr.Error("no image")
    segmentation = recentre(cut_out(Image.open(image_path)))
    output = Path(tempfile.mkdtemp()) / "segmentation.png"
    Image.fromarray(segmentation).save(output)
    return str(output)


def get_random_seed(randomize_seed: bool, seed: float) -> int:
    return int(np.random.default_rng().integers(0, MAX_SEED)) if randomize_seed else int(seed)


def process_3d(
    input_image: str,
    num_steps: float,
    cfg_scale: float,
    grid_res: float,
    seed: float,
    simplify_mesh: bool,
    target_num_faces: float,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio's way to ask for one)
) -> str:
    if input_image is None:
        raise gr.Error("no image")
    for step in range(int(num_steps)):
        progress((step + 1, int(num_steps)), desc="Generating")
        time.sleep(STEP_SECONDS)
    return str(space_glb(Path(tempfile.mkdtemp()) / "output.glb"))


def build_space() -> gr.Blocks:
    with gr.Blocks(title="PartPacker", analytics_enabled=False) as demo:
        with gr.Row():
            with gr.Column():
                input_image = gr.Image(label="Input Image", type="filepath", image_mode=None)
                seg_image = gr.Image(
                    label="Segmentation Result", type="filepath", image_mode=None, interactive=False
                )
                num_steps = gr.Slider(1, 100, value=50, step=1, label="Inference steps")
                cfg_scale = gr.Slider(2, 10, value=7, step=0.1, label="CFG scale")
                grid_res = gr.Slider(256, 512, value=384, step=1, label="Grid resolution")
                randomize_seed = gr.Checkbox(label="Randomize seed", value=True)
                seed = gr.Slider(0, MAX_SEED, value=0, step=1, label="Seed")
                simplify_mesh = gr.Checkbox(label="Simplify mesh", value=False)
                target_num_faces = gr.Slider(
                    10000, 1000000, value=100000, step=1000, label="Face number"
                )
                button = gr.Button("Generate")
            with gr.Column():
                output_model = gr.Model3D(label="Geometry")
        input_image.change(process_image, input_image, seg_image, api_name="process_image")
        button.click(
            get_random_seed, [randomize_seed, seed], seed, api_name="get_random_seed"
        ).then(
            process_3d,
            [seg_image, num_steps, cfg_scale, grid_res, seed, simplify_mesh, target_num_faces],
            output_model,
            api_name="process_3d",
        )
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    print(f"Space stand-in: http://{args.host}:{args.port}/", flush=True)
    build_space().launch(server_name=args.host, server_port=args.port, quiet=True)


if __name__ == "__main__":
    main()
