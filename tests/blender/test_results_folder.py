"""Results live where the user's work lives, never in the extension's own folders (Blender
deletes those with the extension): beside the saved .blend file, else in Documents/PartPacker,
else where the preferences say. A result keeps its own copy of the input image, and the .blend
file's paths to it stay valid when the file is saved elsewhere."""

from __future__ import annotations

import shutil
from pathlib import Path

import bpy
from addon_setup import REPO_ROOT

ROBOT = REPO_ROOT / "examples" / "robot.png"
QUICK = {"grid_res": 32, "steps": 2}


def save_as(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert bpy.ops.wm.save_as_mainfile(filepath=str(path)) == {"FINISHED"}


def test_job_folders_go_beside_the_saved_file_else_into_documents(
    addon, prefs, tmp_path, monkeypatch
):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    prefs.output_dir = ""
    assert addon.settings.jobs_folder() == home / "PartPacker", "no Documents folder: home"
    (home / "Documents").mkdir()
    assert addon.settings.jobs_folder() == home / "Documents" / "PartPacker"
    save_as(tmp_path / "project" / "scene.blend")
    assert addon.settings.jobs_folder() == tmp_path.resolve() / "project" / "partpacker"
    prefs.output_dir = str(tmp_path / "chosen")
    try:
        assert addon.settings.jobs_folder() == tmp_path / "chosen"
    finally:
        prefs.output_dir = ""


def test_a_saved_files_result_keeps_relative_paths_and_its_own_copy_of_the_image(
    addon, backend, tmp_path
):
    project = tmp_path.resolve() / "project"
    photo = project / "photo.png"
    project.mkdir()
    shutil.copyfile(ROBOT, photo)
    save_as(project / "scene.blend")
    root = addon.api.generate(str(photo), seed=3, randomize_seed=False, **QUICK)[0].parent
    metadata = root["partpacker"].to_dict()
    assert metadata["job_folder"].startswith("//partpacker/"), metadata["job_folder"]
    folder = project / metadata["job_folder"][2:]
    assert (folder / "parts.npz").is_file()
    assert metadata["image"] == f"//partpacker/inputs/{folder.name}/photo.png"
    assert (project / metadata["image"][2:]).read_bytes() == ROBOT.read_bytes()

    photo.write_bytes(b"another picture now")  # Generate Again still reads the one it made
    bpy.context.view_layer.objects.active = root
    assert bpy.ops.partpacker.rerun() == {"FINISHED"}, backend.last_error
    (again,) = [o for o in bpy.data.objects if o.type == "EMPTY" and o != root]
    image = project / again["partpacker"]["image"][2:]
    assert image.read_bytes() == ROBOT.read_bytes()
    assert image.parent.name == Path(again["partpacker"]["job_folder"]).name != folder.name

    save_as(tmp_path / "elsewhere" / "copy.blend")
    assert Path(root["partpacker"]["job_folder"]) == folder, "outside its folder: absolute"
    save_as(project / "scene_v2.blend")
    assert root["partpacker"]["job_folder"] == metadata["job_folder"], "relative again"
    name = root.name
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "elsewhere" / "copy.blend"))
    assert Path(bpy.data.objects[name]["partpacker"]["job_folder"]) == folder, "as saved there"


def test_save_a_copy_keeps_the_open_files_paths(addon, tmp_path):
    project = tmp_path.resolve() / "project"
    save_as(project / "scene.blend")
    root = bpy.data.objects.new("result", None)
    bpy.context.scene.collection.objects.link(root)
    root["partpacker"] = {"job_folder": "//partpacker/job", "image": "//partpacker/job/input/a.png"}
    copy = tmp_path / "backup" / "scene.blend"
    copy.parent.mkdir()
    assert bpy.ops.wm.save_as_mainfile(filepath=str(copy), copy=True) == {"FINISHED"}
    assert root["partpacker"]["job_folder"] == "//partpacker/job"
    bpy.ops.wm.open_mainfile(filepath=str(copy))
    saved = bpy.data.objects["result"]["partpacker"]
    assert Path(saved["job_folder"]) == project / "partpacker" / "job"
    assert Path(saved["image"]) == project / "partpacker" / "job" / "input" / "a.png"


def test_prepare_in_a_saved_file_keeps_its_preview_beside_it(addon, backend, tmp_path):
    project = tmp_path.resolve() / "project"
    save_as(project / "scene.blend")
    bpy.context.scene.partpacker.image_path = str(ROBOT)
    assert bpy.ops.partpacker.prepare() == {"FINISHED"}
    preview = bpy.context.scene.partpacker.preview_image
    assert preview.filepath == "//partpacker/previews/robot.png"
    assert (project / "partpacker" / "previews" / "robot.png").is_file()
