"""Editing a result's parts: select, show and hide, isolate one, join several, separate one into
its connected pieces. Joining and separating keep the explode slider working: the parts go
back to their assembled places first, and the drivers are rebuilt for the new parts after."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import bpy

from ..problems import Problem
from .explode import add_explode, release_part
from .result_parts import parts_of


class PartsEditError(Problem):
    """The parts asked for cannot be joined or separated."""


def select_only(part: bpy.types.Object) -> None:
    """`part` selected and active, nothing else selected."""
    view_layer = bpy.context.view_layer
    for obj in view_layer.objects.selected:
        obj.select_set(False)
    part.hide_set(False)
    part.select_set(True)
    view_layer.objects.active = part


def toggle_selected(part: bpy.types.Object) -> None:
    part.select_set(not part.select_get())


def toggle_hidden(part: bpy.types.Object) -> None:
    part.hide_set(not part.hide_get())


def is_isolated(part: bpy.types.Object, root: bpy.types.Object) -> bool:
    """`part` is the one part of its result shown."""
    return not part.hide_get() and all(o.hide_get() for o in parts_of(root) if o != part)


def toggle_isolated(part: bpy.types.Object, root: bpy.types.Object) -> None:
    """Show only `part` of its result; when it already is, show every part again."""
    show_all = is_isolated(part, root)
    for other in parts_of(root):
        other.hide_set(not show_all and other != part)


def join_parts(root: bpy.types.Object, parts: Sequence[bpy.types.Object]) -> bpy.types.Object:
    """One part made of `parts` (two or more of `root`'s), named after the active one if it is
    among them, else the first; its materials keep every face's colour."""
    parts = _checked(root, parts)
    if len(parts) < 2:
        raise PartsEditError("join needs two or more parts of the result", "select more parts")
    active = bpy.context.view_layer.objects.active
    target = active if active in parts else parts[0]
    with _assembled(root):
        for part in parts:
            part.hide_set(False)
        with bpy.context.temp_override(
            active_object=target,
            object=target,
            selected_objects=list(parts),
            selected_editable_objects=list(parts),
        ):
            bpy.ops.object.join()
    return target


def separate_parts(
    root: bpy.types.Object, parts: Sequence[bpy.types.Object]
) -> list[bpy.types.Object]:
    """Each of `parts` split into one part per connected piece; the parts that came out."""
    parts = _checked(root, parts)
    if not parts:
        raise PartsEditError("no part of the result is selected", "select the parts to separate")
    before = set(parts_of(root))
    with _assembled(root):
        for part in parts:
            part.hide_set(False)
            _separate_loose(part)
    return [*parts, *sorted(set(parts_of(root)) - before, key=lambda o: o.name)]


def _separate_loose(part: bpy.types.Object) -> None:
    with bpy.context.temp_override(
        active_object=part, object=part, selected_objects=[part], selected_editable_objects=[part]
    ):
        bpy.ops.object.mode_set(mode="EDIT")
        try:
            bpy.ops.mesh.select_all(action="SELECT")
            bpy.ops.mesh.separate(type="LOOSE")
        finally:
            bpy.ops.object.mode_set(mode="OBJECT")


def _checked(root: bpy.types.Object, parts: Sequence[bpy.types.Object]) -> list:
    own = set(parts_of(root))
    strangers = [part.name for part in parts if part not in own]
    if strangers:
        raise PartsEditError(
            f"{', '.join(strangers)} {'is' if len(strangers) == 1 else 'are'} not a part of "
            f"{root.name}",
            "select parts of one result",
        )
    return sorted(set(parts), key=lambda o: o.name)


@contextmanager
def _assembled(root: bpy.types.Object) -> Iterator[None]:
    """Parts at their assembled places (geometry moved now must not take the offset along),
    and the explode drivers rebuilt for whatever parts there are afterwards."""
    for part in parts_of(root):
        release_part(part)
    bpy.context.view_layer.update()
    try:
        yield
    finally:
        add_explode(root)
