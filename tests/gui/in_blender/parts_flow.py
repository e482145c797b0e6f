"""The parts scenario, in one real Blender run: Generate Variants from the panel (its timer steps
through the jobs), the parts list drawn by Blender's own list, the explode slider, Keep This
Variant, a Viewer Node image as the input, the clipboard. tests/gui/test_gui_parts.py asserts
on what this writes."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bpy
import panels
from harness import Harness, configure_backend, set_panel, settings_from_argv

panels.PANELS = (*panels.PANELS, "PARTPACKER_PT_parts", "PARTPACKER_PT_sequences")
SEQUENCES = "PARTPACKER_PT_sequences"
QUICK = {"steps": 2, "grid_res": 32}


def parts_flow(ui: Harness):
    configure_backend(ui.settings)
    record_list_rows(ui)
    yield from ui.show_partpacker_tab()
    yield from variants(ui)
    yield from parts_panel(ui)
    yield from keep_variant(ui)
    yield from viewer_node(ui)
    yield from clipboard(ui)


def record_list_rows(ui: Harness) -> None:
    """The names Blender's list of parts draws rows for (its draw_item is looked up per draw)."""
    rows = ui.observations.setdefault("list_rows", [])
    parts_list = bpy.types.PARTPACKER_UL_parts
    draw_item = parts_list.draw_item

    # Blender passes as many arguments as the function names: all of them, by name
    def recorded(self, context, layout, data, item, icon, active_data, active_prop, index=0):
        if item.name not in rows:
            rows.append(item.name)
        return draw_item(self, context, layout, data, item, icon, active_data, active_prop, index)

    parts_list.draw_item = recorded


def variants(ui: Harness):
    set_panel(image_source="FILE", image_path=ui.settings["robot_image"], **QUICK)
    set_panel(randomize_seed=False, seed=5)
    bpy.context.window_manager.partpacker_parts.variant_count = 3
    ui.observations["variants"] = ui.press("partpacker.generate_variants")
    shows = lambda text: lambda: ui.panel_shows(text, SEQUENCES)  # noqa: E731
    for number in (1, 2, 3):
        yield from ui.until(shows(f"Variant {number} of 3"), f"variant {number} to run", 180)
        ui.checkpoint(f"variant_{number}_running")
    yield from ui.until(shows("3 of 3 done"), "the variants' summary", 180)
    yield from ui.fresh_panels()
    ui.checkpoint("variants_done")


def parts_panel(ui: Harness):
    root = bpy.data.objects["robot_6"]
    part = sorted(root.children, key=lambda o: o.name)[0]
    for obj in bpy.context.selected_objects:
        obj.select_set(False)
    part.select_set(True)
    bpy.context.view_layer.objects.active = part
    ui.observations.setdefault("list_rows", []).clear()  # each variant was active as it arrived
    root["partpacker_explode"] = 0.6
    root.update_tag()
    yield from ui.fresh_panels()
    yield from ui.screenshot("parts_panel")
    ui.checkpoint("parts_panel")


def keep_variant(ui: Harness):
    ui.observations["keep_variant"] = ui.press("partpacker.keep_variant")
    yield from ui.fresh_panels()
    ui.checkpoint("kept")


def viewer_node(ui: Harness):
    """The compositor's Viewer node, filled by a render (which the bpy module never does)."""
    scene = bpy.context.scene
    scene.use_nodes = True
    tree = scene.node_tree
    layers = next(n for n in tree.nodes if n.type == "R_LAYERS")
    viewer = tree.nodes.new("CompositorNodeViewer")
    tree.links.new(layers.outputs["Image"], viewer.inputs["Image"])
    scene.render.engine = "CYCLES"
    scene.cycles.samples, scene.cycles.use_denoising = 4, False  # this build has no OIDN
    scene.render.resolution_percentage = 10
    with bpy.context.temp_override(window=ui.window()):
        bpy.ops.render.render()
    yield 1.0
    ui.observations["viewer_node"] = ui.press("partpacker.image_from_blender", source="VIEWER_NODE")
    image = scene.partpacker.image
    ui.observations["viewer_node_input"] = bpy.path.abspath(image.filepath) if image else None


def clipboard(ui: Harness):
    """Blender's own Copy in an Image Editor, then Image from Blender > Clipboard."""
    area = ui.view3d()
    area.type = "IMAGE_EDITOR"
    yield 0.5
    area.spaces.active.image = bpy.data.images.load(ui.settings["robot_image"])
    region = next(r for r in area.regions if r.type == "WINDOW")
    where = {"window": ui.window(), "area": area, "region": region}
    try:
        with bpy.context.temp_override(**where):
            ui.observations["clipboard_copy"] = sorted(bpy.ops.image.clipboard_copy())
    except RuntimeError as error:
        ui.observations["clipboard_copy"] = str(error)
    yield 0.5
    ui.observations["clipboard"] = ui.press(
        "partpacker.image_from_blender", where, source="CLIPBOARD"
    )
    image = bpy.context.scene.partpacker.image
    ui.observations["clipboard_input"] = bpy.path.abspath(image.filepath) if image else None
    area.type = "VIEW_3D"
    yield 0.5


Harness(settings_from_argv()).run(parts_flow)
