"""Variants: one image, several seeds in one go, the results side by side along X; keep one and
delete the rest."""

from __future__ import annotations

import random
import tempfile
import uuid
from pathlib import Path
from typing import Any

import bpy

from ..generation import input_image
from ..props import MAX_SEED
from .result_parts import parts_of
from .sequence import GROUP_KEY, JobSequence, SequenceItem, spacing

MAX_VARIANTS = 16


def variant_seeds(context: bpy.types.Context, count: int, overrides: dict[str, Any]) -> list[int]:
    """Distinct seeds: from a given seed (a script's, or the panel's with randomizing off) on,
    else drawn at random."""
    settings = context.scene.partpacker
    if "seed" in overrides or not overrides.get("randomize_seed", settings.randomize_seed):
        first = int(overrides.get("seed", settings.seed))
        return [(first + i) % (MAX_SEED + 1) for i in range(count)]
    return random.sample(range(MAX_SEED + 1), count)


def variant_sequence(
    context: bpy.types.Context, count: int, overrides: dict[str, Any]
) -> JobSequence:
    """`count` generations of the same image (overrides' image_path, else the panel's).
    Raises ImageInputError for a bad image before any job starts."""
    if not 1 <= count <= MAX_VARIANTS:
        raise ValueError(f"the number of variants must be 1 to {MAX_VARIANTS}, not {count}")
    with tempfile.TemporaryDirectory(prefix="partpacker-check-") as scratch:
        input_image(context.scene.partpacker, Path(scratch), overrides.get("image_path", ""))
    step = spacing(context, overrides)
    items = [
        SequenceItem(
            f"seed {seed}",
            {**overrides, "seed": seed, "randomize_seed": False},
            (index * step, 0.0, 0.0),
        )
        for index, seed in enumerate(variant_seeds(context, count, overrides))
    ]
    return JobSequence("variants", items, group=uuid.uuid4().hex)


def siblings(root: bpy.types.Object) -> list[bpy.types.Object]:
    """The other results of the variants `root` came with."""
    group = root.get(GROUP_KEY)
    if not group:
        return []
    return [o for o in bpy.data.objects if o != root and o.get(GROUP_KEY) == group]


def keep_variant(root: bpy.types.Object) -> int:
    """Delete the other variants of `root`'s sequence (objects, meshes, materials, their own
    collections); how many results went."""
    others = siblings(root)
    for other in others:
        remove_result(other)
    return len(others)


def remove_result(root: bpy.types.Object) -> None:
    collections = [c for c in root.users_collection if c.name == root.name]
    for part in parts_of(root):
        mesh, materials = part.data, [s.material for s in part.material_slots if s.material]
        bpy.data.objects.remove(part)
        if mesh.users == 0:
            bpy.data.meshes.remove(mesh)
        for material in materials:
            if material.users == 0:
                bpy.data.materials.remove(material)
    bpy.data.objects.remove(root)
    for collection in collections:
        if not collection.all_objects:
            bpy.data.collections.remove(collection)
