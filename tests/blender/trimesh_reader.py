"""Run with the backend's Python: what trimesh reads in mesh files, as JSON on stdout.

python trimesh_reader.py FILE...   ->  {FILE: [{"name", "faces", "bounds"}, ...]}
"""

import json
import sys

import trimesh


def meshes(path: str) -> list[dict]:
    loaded = trimesh.load(path, force="scene", process=False)
    found = []
    for node in loaded.graph.nodes_geometry:
        transform, geometry_name = loaded.graph[node]
        mesh = loaded.geometry[geometry_name].copy()
        mesh.apply_transform(transform)
        found.append({"name": node, "faces": len(mesh.faces), "bounds": mesh.bounds.tolist()})
    return sorted(found, key=lambda m: m["name"])


if __name__ == "__main__":
    print(json.dumps({path: meshes(path) for path in sys.argv[1:]}))
