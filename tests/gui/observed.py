"""Reading what a scenario saw (in_blender/harness.py writes it): checkpoints of the scene, the
selection and the panels as drawn."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

Checkpoint = dict[str, Any]
MAIN_PANEL = "PARTPACKER_PT_main"


def objects(checkpoint: Checkpoint) -> dict[str, dict[str, Any]]:
    return checkpoint["scene"]["objects"]


def results(checkpoint: Checkpoint) -> dict[str, dict[str, Any]]:
    """The result Empties (objects carrying the generation's metadata), by name."""
    return {name: o for name, o in objects(checkpoint).items() if o["metadata"] is not None}


def new_result(before: Checkpoint, after: Checkpoint) -> str:
    """The name of the one result that `after` has and `before` had not."""
    (name,) = set(results(after)) - set(results(before))
    return name


def parts(checkpoint: Checkpoint, root: str) -> dict[str, dict[str, Any]]:
    return {name: o for name, o in objects(checkpoint).items() if o["parent"] == root}


def job_record(root: dict[str, Any]) -> dict[str, Any]:
    """result.json of the job folder the result came from, as the backend wrote it."""
    return json.loads((Path(root["files"]["job_folder"]) / "result.json").read_text())


def drawn(checkpoint: Checkpoint, panel: str = MAIN_PANEL) -> list[dict[str, Any]]:
    """The layout calls of the panel's latest draw before the checkpoint."""
    return checkpoint["panels"][panel]["items"]


def labels(items: list[dict[str, Any]]) -> list[str]:
    return [item["text"] for item in items if item["call"] == "label"]


def messages(items: list[dict[str, Any]]) -> dict[str, str]:
    """The texts of wrapped labels (an icon, then lines with the blank icon), by first icon."""
    told: dict[str, str] = {}
    icon = None
    for item in items:
        if item["call"] != "label" or not item["text"]:
            continue
        if item["icon"] == "BLANK1" and icon is not None:
            told[icon] += " " + item["text"]
        else:
            icon = item["icon"]
            told[icon] = item["text"]
    return told


def button(items: list[dict[str, Any]], operator: str) -> dict[str, Any] | None:
    """The first button of `operator` in the drawn items, or None."""
    return next((i for i in items if i["call"] == "operator" and i["args"][0] == operator), None)


def usable(item: dict[str, Any] | None) -> bool:
    """A button that is drawn, not greyed out by the layout, and whose operator can run."""
    return item is not None and item["enabled"] and item["poll"]


def png_has_content(path: Path) -> bool:
    """A PNG whose pixel data is not one flat colour (a failed grab comes out black)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    position, compressed = 8, b""
    while position < len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        if kind == b"IDAT":
            compressed += data[position + 8 : position + 8 + length]
        position += 12 + length
    pixels = zlib.decompress(compressed)
    return len(set(pixels[:: max(1, len(pixels) // 100_000)])) > 32
