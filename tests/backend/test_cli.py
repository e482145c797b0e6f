"""`python -m backend ...` as a person or a script runs it: real subprocesses, tiny weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backend.cli import build_parser, main, settings_from_args
from backend.params import PARAM_RANGES

REPO = Path(__file__).resolve().parents[2]
COMMANDS = ("generate", "batch", "prepare", "download", "doctor", "serve")
EXIT_BAD_INPUT, EXIT_WEIGHTS, EXIT_OUTPUT = 2, 3, 5
QUICK = ["--steps", "2", "--grid-res", "16"]


def run_backend(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "backend", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def assert_one_line_error(completed: subprocess.CompletedProcess, code: int, *words: str) -> None:
    lines = completed.stderr.strip().splitlines()
    assert completed.returncode == code, completed.stderr
    assert "Traceback" not in completed.stderr
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, completed.stderr
    for word in words:
        assert word in errors[0], errors[0]
    assert lines[-1].startswith("hint: "), completed.stderr


@pytest.fixture(scope="module")
def rgba_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A red disc on a transparent background: prepared without rembg."""
    yy, xx = np.mgrid[:200, :240]
    pixels = np.zeros((200, 240, 4), dtype=np.uint8)
    pixels[(yy - 100) ** 2 + (xx - 120) ** 2 < 60**2] = (220, 30, 30, 255)
    path = tmp_path_factory.mktemp("rgba") / "disc.png"
    Image.fromarray(pixels).save(path)
    return path


def test_top_level_help_lists_every_command_and_the_exit_codes() -> None:
    completed = run_backend("--help")
    assert completed.returncode == 0
    for command in COMMANDS:
        assert command in completed.stdout
    assert "exit codes" in completed.stdout
    assert "130" in completed.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    completed = run_backend(command, "--help")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith(f"usage: python -m backend {command}")
    assert "--verbose" in completed.stdout


def test_generate_help_documents_every_parameter_with_default_and_range() -> None:
    text = " ".join(run_backend("generate", "--help").stdout.split())
    for name in PARAM_RANGES:
        assert "--" + name.replace("_", "-") in text
    for demo_range in (
        "(default 50, between 1 and 100)",
        "(default 7, between 2 and 10)",
        "(default 0, between 0 and 2147483647)",
        "(default 100000, between 10000 and 1000000)",
    ):
        assert demo_range in text
    for flag in ("--weights-dir", "--cache-dir", "--revision", "--device", "--model-config"):
        assert flag in text
    assert "--no-randomize-seed" in text
    assert "off when --seed is given" in text


def test_no_command_is_a_one_line_usage_error() -> None:
    assert_one_line_error(run_backend(), EXIT_BAD_INPUT, "COMMAND")


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--steps", "abc"], ["--steps", "'abc'", "not a number"]),
        (["--steps", "0"], ["steps", "between 1 and 100"]),
        (["--steps", "2.5"], ["steps", "whole number"]),
        (["--cfg-scale", "11"], ["cfg_scale", "between 2 and 10"]),
        (["--grid-res", "nan"], ["grid_res", "finite"]),
        (["--seed", "-1"], ["seed"]),
        (["--wobble", "1"], ["unrecognized arguments", "--wobble"]),
    ],
)
def test_bad_parameters_exit_2_with_one_line(
    flags: list[str], words: list[str], rgba_image: Path, tmp_path: Path
) -> None:
    completed = run_backend("generate", rgba_image, "-o", tmp_path / "job", *flags)
    assert_one_line_error(completed, EXIT_BAD_INPUT, *words)
    assert not (tmp_path / "job").exists()


def test_missing_image_exits_2(tmp_path: Path) -> None:
    completed = run_backend("generate", tmp_path / "nowhere.png", "-o", tmp_path / "job")
    assert_one_line_error(completed, EXIT_BAD_INPUT, "image not found", "nowhere.png")


def test_prepare_keeps_the_alpha_of_an_rgba_image(rgba_image: Path, tmp_path: Path) -> None:
    preview = tmp_path / "preview.png"
    completed = run_backend("prepare", rgba_image, "-o", preview)
    assert completed.returncode == 0, completed.stderr
    assert str(preview) in completed.stdout
    with Image.open(preview) as image:
        assert image.size == (518, 518)
        assert image.mode == "RGBA"
        alpha = np.asarray(image.getchannel("A"))
    assert alpha[259, 259] == 255
    assert alpha[0, 0] == 0


def test_prepare_removes_the_background_with_rembg(
    object_image: Path, rembg_model: Path, tmp_path: Path
) -> None:
    preview = tmp_path / "cut.png"
    completed = run_backend(
        "prepare", object_image, "-o", preview, "--rembg-model-path", rembg_model
    )
    assert completed.returncode == 0, completed.stderr
    assert "background removed" in completed.stdout
    with Image.open(preview) as image:
        alpha = np.asarray(image.getchannel("A"))
    assert 0 < (alpha > 0).mean() < 1


def test_prepare_into_an_unwritable_place_exits_5(rgba_image: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    completed = run_backend("prepare", rgba_image, "-o", blocker / "preview.png")
    assert_one_line_error(completed, EXIT_OUTPUT, "preview")


def test_model_options_reach_the_pipeline_settings(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        [
            *("generate", "x.png", "-o", str(tmp_path), "--low-memory", "--compile"),
            *("--decode-strategy", "hierarchical", "--weights-cache", str(tmp_path / "cache")),
        ]
    )
    settings = settings_from_args(args)
    assert settings.low_memory and settings.compile_dit
    assert settings.decode_strategy == "hierarchical"
    assert settings.weights_cache == tmp_path / "cache"


@pytest.mark.slow  # minutes on a CPU: the tiny VAE is queried at millions of points
def test_the_default_decoder_is_exact_and_gives_the_official_mesh_at_grid_129(
    tiny_flags: list[str], rgba_image: Path, tmp_path: Path
) -> None:
    """Grid 129 decodes at 64 then 129 (not twice 64): the default's mesh is the one of
    `--decode-strategy hierarchical`, the official coarse-to-fine decoder."""
    args = build_parser().parse_args(["generate", "x.png", "-o", str(tmp_path)])
    assert settings_from_args(args).decode_strategy == "exact"
    meshes = {}
    for name, flags in [("default", []), ("official", ["--decode-strategy", "hierarchical"])]:
        job = tmp_path / name
        completed = run_backend(
            "generate", rgba_image, "-o", job, *tiny_flags, *flags,
            *("--steps", "2", "--grid-res", "129", "--seed", "3"),
        )  # fmt: skip
        assert completed.returncode == 0, completed.stderr
        with np.load(job / "parts.npz") as arrays:
            meshes[name] = {key: arrays[key] for key in ("face_offsets", "faces", "vertices")}
    assert meshes["default"]["face_offsets"][-1] > 1000
    for key, official in meshes["official"].items():
        np.testing.assert_array_equal(meshes["default"][key], official, err_msg=key)


def test_generate_end_to_end_with_tiny_weights(
    tiny_flags: list[str], rgba_image: Path, tmp_path: Path
) -> None:
    job = tmp_path / "job"
    completed = run_backend(
        "generate", rgba_image, "-o", job, *tiny_flags, *QUICK, "--seed", "7", "--json"
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["seed"] == 7
    assert result["parts"], "a tiny-weight generation yields parts"
    for key in ("glb", "npz", "preview", "result_json"):
        assert Path(result[key]).is_file()
        assert Path(result[key]).parent == job
    with np.load(result["npz"]) as arrays:
        assert len(arrays["names"]) == len(result["parts"])
        assert arrays["vertex_offsets"][-1] == len(arrays["vertices"])
    record = json.loads((job / "result.json").read_text())
    assert record["seed"] == 7
    assert record["params"]["steps"] == 2


def test_generate_prints_a_summary_and_randomizes_without_seed(
    tiny_weights: Path, rgba_image: Path, tmp_path: Path
) -> None:
    """Also: the model configuration comes from $PARTPACKER_MODEL_CONFIG when not given."""
    env = {**os.environ, "PARTPACKER_MODEL_CONFIG": str(tiny_weights / "model_config.json")}
    job = tmp_path / "job"
    completed = run_backend(
        "generate",
        rgba_image,
        "-o",
        job,
        "--weights-dir",
        tiny_weights,
        "--device",
        "cpu",
        *QUICK,
        env=env,
    )
    assert completed.returncode == 0, completed.stderr
    first_line = completed.stdout.splitlines()[0]
    assert "parts from seed" in first_line
    record = json.loads((job / "result.json").read_text())
    assert f"seed {record['seed']} " in first_line
    assert "part_000" in completed.stdout
    assert str(job) in completed.stdout


def test_generate_into_an_unwritable_folder_exits_5(
    tiny_flags: list[str], rgba_image: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    completed = run_backend("generate", rgba_image, "-o", blocker / "job", *tiny_flags, *QUICK)
    assert_one_line_error(completed, EXIT_OUTPUT, "output folder")


def test_generate_without_weights_exits_3(
    tiny_weights: Path, rgba_image: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "no_weights"
    empty.mkdir()
    completed = run_backend(
        "generate",
        rgba_image,
        "-o",
        tmp_path / "job",
        "--weights-dir",
        empty,
        "--model-config",
        tiny_weights / "model_config.json",
        "--device",
        "cpu",
        *QUICK,
    )
    assert_one_line_error(completed, EXIT_WEIGHTS)
    assert "download" in completed.stderr


def test_doctor_passes_with_tiny_weights(tiny_flags: list[str]) -> None:
    completed = run_backend("doctor", "--json", *tiny_flags)
    assert completed.returncode == 0, completed.stdout
    report = json.loads(completed.stdout)
    assert report["ok"] is True
    assert report["device"]["device"] == "cpu"
    assert report["environment"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert report["environment"]["torch"]
    names = [check["name"] for check in report["checks"]]
    assert {"weights flow.pt", "weights vae.pt", "weights model.safetensors"} <= set(names)
    assert all(check["ok"] for check in report["checks"])


def test_doctor_without_weights_says_what_to_do_and_exits_3(
    tiny_weights: Path, tmp_path: Path
) -> None:
    completed = run_backend(
        "doctor", "--weights-dir", tmp_path, "--model-config", tiny_weights / "model_config.json"
    )
    assert completed.returncode == EXIT_WEIGHTS, completed.stdout
    failed = [line for line in completed.stdout.splitlines() if line.startswith("[FAIL]")]
    assert len(failed) == 1
    assert "weights" in failed[0] and "flow.pt" in failed[0]
    assert "python -m backend download" in completed.stdout
    assert completed.stdout.strip().endswith("generation cannot run: 1 problem(s)")


def test_doctor_names_swapped_weight_files(tiny_weights: Path, tmp_path: Path) -> None:
    for source, target in (("flow.pt", "vae.pt"), ("vae.pt", "flow.pt")):
        (tmp_path / target).write_bytes((tiny_weights / source).read_bytes())
    (tmp_path / "model.safetensors").write_bytes((tiny_weights / "model.safetensors").read_bytes())
    completed = run_backend(
        "doctor",
        "--json",
        "--weights-dir",
        tmp_path,
        "--model-config",
        tiny_weights / "model_config.json",
    )
    assert completed.returncode == EXIT_WEIGHTS
    checks = {check["name"]: check for check in json.loads(completed.stdout)["checks"]}
    assert not checks["weights flow.pt"]["ok"]
    assert "looks like vae.pt" in checks["weights flow.pt"]["message"]
    assert not checks["weights vae.pt"]["ok"]
    assert checks["weights model.safetensors"]["ok"]


def test_download_offline_finds_a_complete_local_folder(tiny_weights: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    completed = run_backend("download", "--local-dir", tiny_weights, env=env)
    assert completed.returncode == 0, completed.stderr
    assert str(tiny_weights / "flow.pt") in completed.stdout
    assert f"--weights-dir {tiny_weights}" in completed.stdout


def test_download_offline_with_an_empty_cache_exits_3(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    completed = run_backend("download", "--cache-dir", tmp_path, env=env)
    assert_one_line_error(completed, EXIT_WEIGHTS, "HF_HUB_OFFLINE", "flow.pt")


def test_a_bug_is_one_line_and_exit_code_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(args: object) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr("backend.cli.generation.run_prepare", broken)
    assert main(["prepare", "photo.png", "-o", "preview.png"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].endswith("internal error: RuntimeError: a bug")
    assert "--verbose" in lines[-1]
