"""The public Space's API as its API page states it (written from that page, not from our
code): per endpoint, each parameter's name, label, component, Python type and default, in order,
and what it returns. The ranges are PRODUCT.md's (the page does not show them)."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

REQUIRED = "required"
SPACE_ENDPOINTS: dict[str, dict[str, list[tuple[Any, ...]]]] = {
    "/process_image": {
        "parameters": [("image_path", "Input Image", "Image", "filepath", REQUIRED)],
        "returns": [("Segmentation Result", "Image", "filepath")],
    },
    "/get_random_seed": {
        "parameters": [
            ("randomize_seed", "Randomize seed", "Checkbox", "bool", True),
            ("seed", "Seed", "Slider", "float", 0),
        ],
        "returns": [("Seed", "Slider", "float")],
    },
    "/process_3d": {
        "parameters": [
            ("input_image", "Segmentation Result", "Image", "filepath", REQUIRED),
            ("num_steps", "Inference steps", "Slider", "float", 50),
            ("cfg_scale", "CFG scale", "Slider", "float", 7),
            ("grid_res", "Grid resolution", "Slider", "float", 384),
            ("seed", "Seed", "Slider", "float", 0),
            ("simplify_mesh", "Simplify mesh", "Checkbox", "bool", False),
            ("target_num_faces", "Face number", "Slider", "float", 100000),
        ],
        "returns": [("Geometry", "Model3d", "filepath")],
    },
}
SPACE_RANGES = {
    "num_steps": (1, 100),
    "cfg_scale": (2, 10),
    "grid_res": (256, 512),
    "seed": (0, 2**31 - 1),
    "target_num_faces": (10_000, 1_000_000),
}


def served_signature(api: dict[str, Any]) -> dict[str, dict[str, list[tuple[Any, ...]]]]:
    """`Client.view_api(return_format="dict")` in the shape of SPACE_ENDPOINTS."""
    signature = {}
    for name, endpoint in api["named_endpoints"].items():
        parameters = [
            (
                p["parameter_name"],
                p["label"],
                p["component"],
                p["python_type"]["type"],
                p["parameter_default"] if p["parameter_has_default"] else REQUIRED,
            )
            for p in endpoint["parameters"]
        ]
        returns = [
            (r["label"], r["component"], r["python_type"]["type"]) for r in endpoint["returns"]
        ]
        signature[name] = {"parameters": parameters, "returns": returns}
    return signature


def served_ranges(api: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Each slider's range, read from the description Gradio gives its type."""
    ranges = {}
    for parameter in api["named_endpoints"]["/process_3d"]["parameters"]:
        found = re.fullmatch(
            r"numeric value between (\S+) and (\S+)", parameter["type"].get("description", "")
        )
        if found:
            ranges[parameter["parameter_name"]] = (float(found[1]), float(found[2]))
    return ranges


def glb_tree(path: str | Path) -> dict[str, Any]:
    """The JSON chunk of a GLB file."""
    data = Path(path).read_bytes()
    magic, _, _ = struct.unpack("<4sII", data[:12])
    assert magic == b"glTF", f"{path} is not a GLB file"
    length, kind = struct.unpack("<I4s", data[12:20])
    assert kind == b"JSON"
    return json.loads(data[20 : 20 + length])
