"""The sidebar panel (3D Viewport > N > PartPacker) and the backend status lines."""

import bpy

from . import notices, session
from .client import WorkerState
from .importer import ROOT_KEY, find_result_root
from .messages import stage_name, user_error
from .readiness import backend_problem
from .ui_text import draw_wrapped


def backend_status(context: bpy.types.Context) -> tuple[str, str]:
    """(text, icon) saying where the backend stands."""
    client = session.current().client
    state = client.state
    if state is WorkerState.STOPPED:
        if not backend_set_up(context):
            return "Backend not set up (see Preferences)", "ERROR"
        return "Backend off until the next job", "PAUSE"
    if state is WorkerState.STARTING:
        return "Backend starting…", "SORTTIME"
    device = client.device_name
    if state is WorkerState.BUSY:
        return f"Busy on {device}", "SORTTIME"
    return f"Ready on {device}", "CHECKMARK"


def backend_set_up(context: bpy.types.Context) -> bool:
    return backend_problem(context) is None


def task_progress(task: session.Task) -> tuple[float, str]:
    """(fraction of the current stage, text) for the progress bar."""
    progress = task.job.progress if task.job is not None else None
    if task.job is not None and task.job.cancel_requested:
        return 0.0, f"Cancelling… {task.elapsed:.0f} s"
    if progress is None:
        return 0.0, f"Waiting for the backend… {task.elapsed:.0f} s"
    stage = stage_name(progress.stage)
    fraction = progress.step / progress.total if progress.total else 0.0
    steps = f" {progress.step}/{progress.total}" if progress.total > 1 else ""
    return fraction, f"{stage}{steps} · {task.elapsed:.0f} s"


def draw_image_picker(layout: bpy.types.UILayout, settings) -> None:
    layout.row().prop(settings, "image_source", expand=True)
    if settings.image_source == "FILE":
        layout.prop(settings, "image_path", text="")
        return
    layout.template_ID(settings, "image", open="image.open")
    if settings.image is not None:
        layout.template_icon(icon_value=layout.icon(settings.image), scale=6.0)


def draw_task(layout: bpy.types.UILayout, task: session.Task) -> None:
    box = layout.box()
    fraction, text = task_progress(task)
    box.label(text=f"{task.kind.capitalize()}: {task.label}")
    box.progress(factor=fraction, type="BAR", text=text)
    box.operator("partpacker.cancel", icon="CANCEL")


def draw_error(layout: bpy.types.UILayout, context: bpy.types.Context, error) -> None:
    """The error in the user's words, wrapped to the sidebar, and Details for all of it."""
    message, hint = user_error(error.code, error.message, error.hint)
    box = layout.box()
    draw_wrapped(box, context, message, icon="ERROR")
    if hint:
        draw_wrapped(box, context, hint, icon="INFO")
    box.operator("partpacker.show_details", icon="TEXT")


def draw_backend_status(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    text, icon = backend_status(context)
    client = session.current().client
    if client.device in ("", "cpu"):  # nothing to free in GPU memory
        draw_wrapped(layout, context, text, icon=icon)
    else:
        row = layout.row(align=True)
        row.label(text=text, icon=icon)
        row.operator("partpacker.free_memory", text="", icon="TRASH")
    if not backend_set_up(context):
        layout.operator("partpacker.show_preferences", icon="PREFERENCES")


class SidebarPanel:
    """Where every PartPacker panel lives: 3D Viewport > Sidebar (N) > PartPacker."""

    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "PartPacker"


class PARTPACKER_PT_main(SidebarPanel, bpy.types.Panel):
    bl_label = "PartPacker"
    bl_idname = "PARTPACKER_PT_main"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = context.scene.partpacker
        current = session.current()
        draw_image_picker(layout, settings)
        layout.operator("partpacker.prepare", icon="IMAGE_RGB_ALPHA")
        if settings.preview_image is not None:
            layout.template_icon(icon_value=layout.icon(settings.preview_image), scale=8.0)
        column = layout.column(align=True)
        column.prop(settings, "steps")
        column.prop(settings, "cfg_scale")
        column.prop(settings, "grid_res")
        row = layout.row(align=True)
        row.active = not settings.randomize_seed
        row.prop(settings, "seed")
        row.operator("partpacker.random_seed", text="", icon="FILE_REFRESH")
        layout.prop(settings, "randomize_seed")
        generate = layout.row()
        generate.scale_y = 1.5
        generate.enabled = current.task is None
        generate.operator("partpacker.generate", icon="MESH_MONKEY")
        if current.task is not None:
            draw_task(layout, current.task)
        if current.last_error is not None:
            draw_error(layout, context, current.last_error)
        elif current.task is None and notices.latest():
            draw_wrapped(layout, context, notices.latest(), icon="INFO")
        draw_backend_status(layout, context)


class PARTPACKER_PT_advanced(SidebarPanel, bpy.types.Panel):
    bl_label = "Advanced"
    bl_idname = "PARTPACKER_PT_advanced"
    bl_parent_id = "PARTPACKER_PT_main"
    bl_options = {"DEFAULT_CLOSED"}  # noqa: RUF012 (Blender reads a set)

    def draw(self, context: bpy.types.Context) -> None:
        settings = context.scene.partpacker
        layout = self.layout
        layout.prop(settings, "simplify")
        row = layout.row()
        row.enabled = settings.simplify
        row.prop(settings, "target_faces")
        layout.prop(settings, "remove_small_pieces")
        layout.prop(settings, "guidance_fraction")


class PARTPACKER_PT_output(SidebarPanel, bpy.types.Panel):
    bl_label = "Output"
    bl_idname = "PARTPACKER_PT_output"
    bl_parent_id = "PARTPACKER_PT_main"
    bl_options = {"DEFAULT_CLOSED"}  # noqa: RUF012 (Blender reads a set)

    def draw(self, context: bpy.types.Context) -> None:
        settings = context.scene.partpacker
        layout = self.layout
        layout.prop(settings, "size")
        layout.prop(settings, "at_cursor")
        layout.prop(settings, "shade_smooth")
        layout.prop(settings, "new_collection")
        layout.operator("partpacker.import_folder", icon="FILE_FOLDER")


class PARTPACKER_PT_result(SidebarPanel, bpy.types.Panel):
    bl_label = "Selected Result"
    bl_idname = "PARTPACKER_PT_result"
    bl_parent_id = "PARTPACKER_PT_main"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return find_result_root(context.active_object) is not None

    def draw(self, context: bpy.types.Context) -> None:
        root = find_result_root(context.active_object)
        assert root is not None, "poll() found it"
        metadata = root[ROOT_KEY].to_dict()
        column = self.layout.column(align=True)
        column.label(text=f"Image: {bpy.path.basename(metadata.get('image', ''))}")
        column.label(text=f"Seed: {metadata.get('seed', '?')}")
        total = sum(metadata.get("timings", {}).values())
        column.label(text=f"Generated in {total:.1f} s")
        self.layout.operator("partpacker.rerun", icon="FILE_REFRESH")


CLASSES = (PARTPACKER_PT_main, PARTPACKER_PT_advanced, PARTPACKER_PT_output, PARTPACKER_PT_result)
