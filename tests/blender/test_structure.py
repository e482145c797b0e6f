"""The add-on's layout as its docstrings state it, read from the source (every import counts,
those inside functions too): no import circles; the plain modules reach no bpy; the session and
the UI know a backend only by its interface; small files.

    python tests/blender/test_structure.py     # prints the import graph
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "partpacker_blender"
TESTS = Path(__file__).resolve().parent
BPY = "bpy"
PLAIN_MODULES = (
    "child_process",
    "polling",
    "problems",
    "messages",
    "placement",
    "parts_file",
    "client",
    "client.backend",
    "client.gradio_http",
    "client.protocol",
    "client.remote",
    "client.remote_job",
    "client.remote_settings",
    "client.switch",
    "client.worker",
    "client.worker_settings",
    "glb_file",
    "setup.environment",
    "setup.machine",
    "setup.path_limits",
    "setup.planning",
    "setup.python_finder",
    "setup.runner",
    "setup.state",
    "setup.torch_build",
    "setup.weights",
)
"""The modules whose docstrings (or their package's) say they do not import bpy."""
MAX_LINES = 300


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The add-on's modules that `name` imports, and "bpy" if it imports bpy itself."""
    parts = name.split(".") if name else []
    package = parts if path.name == "__init__.py" else parts[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found |= {BPY for alias in node.names if alias.name.split(".")[0] == BPY}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found |= {BPY} if (node.module or "").split(".")[0] == BPY else set()
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - (node.level - 1)]
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            submodules = {f"{target}.{alias.name}".lstrip(".") for alias in node.names}
            found |= (submodules & known) or {target}
    return found


def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(name, path, set(found)) for name, path in found.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import circle as a path of module names, or [] when there is none."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str]:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done or name not in graph:
            return []
        for target in sorted(graph[name]):
            cycle = visit(target, [*path, name])
            if cycle:
                return cycle
        done.add(name)
        return []

    for name in sorted(graph):
        cycle = visit(name, [])
        if cycle:
            return cycle
    return []


def reaches(graph: dict[str, set[str]], start: str, goal: str) -> list[str]:
    """A chain of imports from `start` to `goal`, or [] when there is none."""
    seen, frontier = {start}, [[start]]
    while frontier:
        path = frontier.pop()
        for target in sorted(graph.get(path[-1], ())):
            if target == goal:
                return [*path, target]
            if target not in seen:
                seen.add(target)
                frontier.append([*path, target])
    return []


def test_the_graph_sees_imports_inside_functions_and_from_packages(tmp_path: Path) -> None:
    module = tmp_path / "drawing.py"
    module.write_text("def draw():\n    from .setup.ui import draw_setup\n    import bpy\n")
    known = {"setup.ui", "setup", "client"}
    assert imports_of("drawing", module, known) == {"setup.ui", BPY}
    package = tmp_path / "__init__.py"
    package.write_text("from . import ui\nfrom ..client import Job\n")
    assert imports_of("setup", package, known) == {"setup.ui", "client"}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_circles() -> None:
    graph = import_graph()
    assert len(graph) > 20, "the add-on's modules were found"
    assert find_cycle(graph) == []


def test_plain_modules_reach_no_bpy() -> None:
    graph = import_graph()
    assert set(PLAIN_MODULES) <= set(graph)
    chains = {name: reaches(graph, name, BPY) for name in PLAIN_MODULES}
    assert not {name: chain for name, chain in chains.items() if chain}
    assert reaches(graph, "session", BPY), "the check can fail"


def test_the_session_and_the_ui_know_a_backend_only_by_its_interface() -> None:
    """They import from `client` only what backend.py and protocol.py define, never the worker."""
    interface = {
        node.name
        for module in ("backend.py", "protocol.py")
        for node in ast.parse((PACKAGE / "client" / module).read_text("utf-8")).body
        if isinstance(node, ast.ClassDef | ast.FunctionDef)
    } | {"PROTOCOL_VERSION"}
    used = {
        alias.name
        if node.module in ("client", "client.backend", "client.protocol")
        else node.module
        for name in ("session", "ui", "operators", "generation", "api")
        for node in ast.walk(ast.parse((PACKAGE / f"{name}.py").read_text("utf-8")))
        if isinstance(node, ast.ImportFrom)
        and node.level == 1
        and (node.module or "").split(".")[0] == "client"
        for alias in node.names
    }
    assert used, "the check can fail"
    assert used <= interface, used - interface


def test_no_file_is_longer_than_the_limit() -> None:
    lengths = {
        path: len(path.read_text("utf-8").splitlines())
        for folder in (PACKAGE, TESTS)
        for path in folder.rglob("*.py")
    }
    assert not {str(path): n for path, n in lengths.items() if n > MAX_LINES}


if __name__ == "__main__":
    for name, targets in import_graph().items():
        print(f"{name or '__init__'} -> {', '.join(sorted(t or '__init__' for t in targets))}")
    sys.exit(1 if find_cycle(import_graph()) else 0)
