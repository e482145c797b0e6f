"""From an occupancy grid to the parts of one volume: marching cubes, the optional clean-up and
decimation, and the split into connected parts.

Conventions (reference README §3.8): the grid is inside-positive, (R+1)^3 points over [-1, 1],
and may hold NaN where the coarse-to-fine decoder did not query. A corner is inside when its
value is > 0 or NaN (PyMCubes' rule); vertices are interpolated linearly on grid edges and mapped
v * 2 / R - 1; triangles wind counter-clockwise seen from outside.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field

import fast_simplification
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from skimage.measure import marching_cubes

from .errors import BadInputError
from .parts import Part

log = logging.getLogger(__name__)

MARCHING_CUBES_BACKENDS = ("skimage", "pymcubes")

BLOCK = 32
"""Cubes per block side in the skimage path."""

TINY_PART_FACES = 10
"""Pieces with this many faces or fewer are always dropped after the split, as the demo does."""

Mesh = tuple[np.ndarray, np.ndarray]
"""Vertices float64 [V, 3] and faces int64 [F, 3]."""


@dataclass(frozen=True)
class SmallPieceThresholds:
    """The demo's clean-up (its kiui/pymeshlab `clean_mesh`), used by "Remove small pieces"."""

    min_diagonal_fraction: float = 0.05
    """Drop pieces whose bounding-box diagonal is below this fraction of the volume's."""
    min_faces: int = 25
    """Drop pieces with fewer faces."""
    merge_distance_fraction: float = 1e-4
    """Merge vertices closer than this fraction of the volume's bounding-box diagonal. The demo
    asks pymeshlab for "1%", which pymeshlab (measured with 2025.7) applies as 0.01%: a real 1%
    would collapse every detail under a few grid cells."""


@dataclass(frozen=True)
class MeshOptions:
    simplify: bool = False
    """Decimate each volume's mesh to about `target_faces` (quadric edge collapse)."""
    target_faces: int = 100_000
    remove_small_pieces: bool = False
    """The demo's size-based clean-up; off by default because it also deletes genuine small
    parts, while a floater is one click to delete in Blender."""
    thresholds: SmallPieceThresholds = field(default_factory=SmallPieceThresholds)
    marching_cubes: str = "skimage"
    """Marching-cubes implementation: "skimage" (default, faster) or "pymcubes" (optional)."""

    def __post_init__(self) -> None:
        if self.target_faces < 1:
            raise BadInputError(f"target_faces must be positive, got {self.target_faces}")
        _check_backend(self.marching_cubes)


def mesh_volume(
    grid: np.ndarray, volume_index: int, options: MeshOptions | None = None
) -> list[Part]:
    """The parts of one volume's grid, largest (most faces) first."""
    options = options or MeshOptions()
    vertices, faces = extract_mesh(grid, options.marching_cubes)
    return mesh_parts(vertices, faces, volume_index, options)


def mesh_parts(
    vertices: np.ndarray, faces: np.ndarray, volume_index: int, options: MeshOptions
) -> list[Part]:
    """One volume's extracted mesh as parts, largest first: optionally remove small pieces and
    decimate, split, drop tiny pieces."""
    start = time.perf_counter()
    extracted = len(faces)
    if options.remove_small_pieces:
        vertices, faces = remove_small_pieces(vertices, faces, options.thresholds)
    if options.simplify:
        vertices, faces = decimate(vertices, faces, options.target_faces)
    pieces = [piece for piece in split_parts(vertices, faces) if len(piece[1]) > TINY_PART_FACES]
    pieces.sort(key=lambda piece: len(piece[1]), reverse=True)
    log.info(
        "volume %d: %d faces extracted, %d faces in %d parts (%.2f s)",
        volume_index,
        extracted,
        sum(len(piece[1]) for piece in pieces),
        len(pieces),
        time.perf_counter() - start,
    )
    return [
        Part(f"volume{volume_index}_piece{index:03d}", volume_index, piece_vertices, piece_faces)
        for index, (piece_vertices, piece_faces) in enumerate(pieces)
    ]


def extract_mesh(grid: np.ndarray, backend: str = "skimage") -> Mesh:
    """The iso-surface 0 of an inside-positive grid with PyMCubes' conventions: vertices float64
    [V, 3] in [-1, 1], faces int64 [F, 3]. Faces touching a NaN vertex are dropped, then
    unreferenced vertices; vertices on the same grid edge or grid point become one."""
    grid = _checked_grid(grid)
    _check_backend(backend)
    surface = _skimage_surface if backend == "skimage" else _pymcubes_surface
    vertices, faces = surface(grid)
    vertices, faces = _drop_non_finite_faces(vertices, faces)
    vertices, faces = _merge_vertices_on_same_edge(vertices, faces, grid.shape)
    resolution = np.asarray(grid.shape, dtype=np.float64) - 1
    return vertices * 2 / resolution - 1, faces


def _check_backend(backend: str) -> None:
    if backend not in MARCHING_CUBES_BACKENDS:
        raise BadInputError(
            f"unknown marching-cubes backend {backend!r}",
            f"choose one of {', '.join(MARCHING_CUBES_BACKENDS)}",
        )


def _checked_grid(grid: np.ndarray) -> np.ndarray:
    grid = np.asarray(grid)
    if grid.ndim != 3 or min(grid.shape) < 2:
        raise BadInputError(
            f"an occupancy grid must be 3-D with 2+ points per axis, got {grid.shape}"
        )
    if not np.issubdtype(grid.dtype, np.floating):
        raise BadInputError(f"an occupancy grid must hold floats, got {grid.dtype}")
    return grid


def _empty_mesh() -> Mesh:
    return np.zeros((0, 3), np.float64), np.zeros((0, 3), np.int64)


def _skimage_surface(grid: np.ndarray) -> Mesh:
    """scikit-image's classic (Lorensen) marching cubes with exactly PyMCubes' triangles.

    skimage walks each cube with its x along the last array axis, PyMCubes along the first: on
    the transposed grid both use the same corner order, so the same case table gives the same
    triangles. skimage only sees which corners are outside (1) and inside (0), which puts every
    vertex on the midpoint of its edge; the real positions are interpolated afterwards, as
    PyMCubes does, so NaN corners count as inside and NaN-edge vertices become NaN.

    The grid goes through in blocks of BLOCK^3 cubes, skipping blocks without both a finite
    inside and an outside corner (no face of theirs would survive): the surface touches few
    blocks, and small blocks transpose in cache. Triangles are per cube, so the blocks give the
    whole grid's triangles; vertices on shared block faces are merged with the others."""
    inside, outside = grid > 0, grid <= 0  # NaN is neither: inside, but never finite
    block_midpoints, block_faces = [], []
    vertex_count = 0
    for origin in itertools.product(*(range(0, size - 1, BLOCK) for size in grid.shape)):
        block = tuple(slice(start, start + BLOCK + 1) for start in origin)
        midpoints, faces = _skimage_block(inside[block], outside[block])
        block_midpoints.append(midpoints + origin)
        block_faces.append(faces + vertex_count)
        vertex_count += len(midpoints)
    if vertex_count == 0:
        return _empty_mesh()
    midpoints = np.concatenate(block_midpoints)
    return _interpolate_on_edges(grid, midpoints), np.concatenate(block_faces)


def _skimage_block(inside: np.ndarray, outside: np.ndarray) -> Mesh:
    """Edge midpoints (block index space) and faces of one block."""
    if not inside.any() or not outside.any():
        return _empty_mesh()
    try:
        midpoints, faces, _, _ = marching_cubes(
            np.ascontiguousarray(outside.T, dtype=np.float32),
            level=0.5,
            method="lorensen",
            gradient_direction="ascent",
            mask=_cubes_with_a_finite_inside_corner(np.ascontiguousarray(inside.T)),
        )
    except RuntimeError:  # skimage's "No surface found": no masked cube is cut
        return _empty_mesh()
    return midpoints[:, ::-1].astype(np.float64), faces.astype(np.int64)


def _cubes_with_a_finite_inside_corner(inside: np.ndarray) -> np.ndarray:
    """skimage's cube mask (indexed by each cube's upper corner). Every vertex of a cube whose
    inside corners are all NaN is NaN, so skipping it only skips faces that would be dropped;
    on coarse-to-fine grids that is most of the work."""
    along_x = inside[:-1] | inside[1:]
    along_xy = along_x[:, :-1] | along_x[:, 1:]
    mask = np.zeros_like(inside)
    np.logical_or(along_xy[:, :, :-1], along_xy[:, :, 1:], out=mask[1:, 1:, 1:])
    return mask


def _interpolate_on_edges(grid: np.ndarray, midpoints: np.ndarray) -> np.ndarray:
    """Move each edge midpoint to where the linear interpolation of the grid crosses 0, with
    PyMCubes' arithmetic (x-edges interpolated from their upper end, y and z from their lower),
    so interior vertices come out bit for bit as PyMCubes' own."""
    rows = np.arange(len(midpoints))
    lower = np.floor(midpoints).astype(np.intp)
    axis = np.argmax(midpoints - lower, axis=1)
    upper = lower.copy()
    upper[rows, axis] += 1
    from_upper = (axis == 0)[:, None]
    start = np.where(from_upper, upper, lower)
    end = np.where(from_upper, lower, upper)
    value_start = grid[tuple(start.T)].astype(np.float64)
    value_end = grid[tuple(end.T)].astype(np.float64)
    start_coord = start[rows, axis].astype(np.float64)
    step = end[rows, axis] - start_coord
    vertices = lower.astype(np.float64)
    vertices[rows, axis] = step * (0.0 - value_start) / (value_end - value_start) + start_coord
    return vertices


def _pymcubes_surface(grid: np.ndarray) -> Mesh:
    try:
        import mcubes
    except ImportError as error:
        raise BadInputError(
            "the 'pymcubes' marching-cubes backend needs PyMCubes",
            "pip install PyMCubes, or use the default 'skimage' backend",
        ) from error
    vertices, faces = mcubes.marching_cubes(grid, 0.0)
    return vertices, faces.astype(np.int64)


def _drop_non_finite_faces(vertices: np.ndarray, faces: np.ndarray) -> Mesh:
    finite = np.isfinite(vertices).all(axis=1)
    return drop_unreferenced_vertices(vertices, faces[finite[faces].all(axis=1)])


def drop_unreferenced_vertices(vertices: np.ndarray, faces: np.ndarray) -> Mesh:
    used = np.zeros(len(vertices), dtype=bool)
    used[faces.ravel()] = True
    if used.all():
        return vertices, faces
    new_index = np.cumsum(used) - 1
    return vertices[used], new_index[faces]


def _merge_vertices_on_same_edge(
    vertices: np.ndarray, faces: np.ndarray, shape: tuple[int, ...]
) -> Mesh:
    """One vertex per grid edge, and one per grid point where a corner value of exactly 0 puts
    the vertices of several edges. Faces that lose a corner this way are dropped."""
    lower = np.floor(vertices)
    off_grid = vertices != lower
    on_point = ~off_grid.any(axis=1)
    kind = np.where(on_point, 3, np.argmax(off_grid, axis=1))
    keys = np.ravel_multi_index(tuple(lower.astype(np.intp).T), shape) * 4 + kind
    unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    if len(unique) == len(keys):
        return vertices, faces
    faces = inverse[faces]
    return vertices[first], faces[_has_three_corners(faces)]


def _has_three_corners(faces: np.ndarray) -> np.ndarray:
    return (
        (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    )


def split_parts(vertices: np.ndarray, faces: np.ndarray) -> list[Mesh]:
    """The connected components of the vertex graph that have faces, each re-indexed locally, in
    the order of their lowest vertex index."""
    count, labels = component_labels(len(vertices), faces)
    vertex_order = np.argsort(labels, kind="stable")
    vertex_starts = np.searchsorted(labels[vertex_order], np.arange(count + 1))
    local_index = np.empty(len(vertices), dtype=np.int64)
    local_index[vertex_order] = np.arange(len(vertices)) - np.repeat(
        vertex_starts[:-1], np.diff(vertex_starts)
    )
    face_labels = labels[faces[:, 0]]
    face_order = np.argsort(face_labels, kind="stable")
    face_starts = np.searchsorted(face_labels[face_order], np.arange(count + 1))
    sorted_vertices = vertices[vertex_order]
    local_faces = local_index[faces[face_order]]
    return [
        (
            sorted_vertices[vertex_starts[label] : vertex_starts[label + 1]],
            local_faces[face_starts[label] : face_starts[label + 1]],
        )
        for label in range(count)
        if face_starts[label + 1] > face_starts[label]
    ]


def component_labels(vertex_count: int, faces: np.ndarray) -> tuple[int, np.ndarray]:
    """Connected components of the graph whose edges are the faces' sides: (count, label per
    vertex). Labels follow the lowest vertex index of each component."""
    return _graph_components(vertex_count, np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]]]))


def _graph_components(vertex_count: int, edges: np.ndarray) -> tuple[int, np.ndarray]:
    graph = coo_matrix(
        (np.ones(len(edges), dtype=np.int8), (edges[:, 0], edges[:, 1])),
        shape=(vertex_count, vertex_count),
    ).tocsr()
    count, labels = connected_components(graph, directed=False)
    return count, labels


def remove_small_pieces(
    vertices: np.ndarray, faces: np.ndarray, thresholds: SmallPieceThresholds
) -> Mesh:
    """The demo's clean-up: merge close vertices, drop duplicate and zero-area faces, then drop
    pieces that are small next to the whole volume's bounding box or have few faces."""
    if len(faces) == 0:
        return vertices, faces
    diagonal = _bounding_box_diagonal(vertices)
    vertices, faces = _merge_close_vertices(
        vertices, faces, thresholds.merge_distance_fraction * diagonal
    )
    faces = _drop_duplicate_faces(faces)
    faces = faces[_triangle_areas(vertices, faces) > 0]
    vertices, faces = drop_unreferenced_vertices(vertices, faces)
    if len(faces) == 0:
        return vertices, faces
    count, labels = component_labels(len(vertices), faces)
    face_labels = labels[faces[:, 0]]
    faces_per_piece = np.bincount(face_labels, minlength=count)
    keep = (faces_per_piece >= thresholds.min_faces) & (
        _piece_diagonals(vertices, labels, count) >= thresholds.min_diagonal_fraction * diagonal
    )
    log.info("remove small pieces: %d of %d pieces kept", int(keep.sum()), count)
    return drop_unreferenced_vertices(vertices, faces[keep[face_labels]])


def _bounding_box_diagonal(vertices: np.ndarray) -> float:
    return float(np.linalg.norm(vertices.max(axis=0) - vertices.min(axis=0)))


def _piece_diagonals(vertices: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    order = np.argsort(labels, kind="stable")
    starts = np.searchsorted(labels[order], np.arange(count))
    low = np.minimum.reduceat(vertices[order], starts, axis=0)
    high = np.maximum.reduceat(vertices[order], starts, axis=0)
    return np.linalg.norm(high - low, axis=1)


def _merge_close_vertices(vertices: np.ndarray, faces: np.ndarray, distance: float) -> Mesh:
    """Vertices closer than `distance` (chained) become their lowest-index vertex."""
    pairs = cKDTree(vertices).query_pairs(distance, output_type="ndarray")
    if len(pairs) == 0:
        return vertices, faces
    _, labels = _graph_components(len(vertices), pairs)
    _, representative = np.unique(labels, return_index=True)
    faces = representative[labels][faces]
    return drop_unreferenced_vertices(vertices, faces[_has_three_corners(faces)])


def _drop_duplicate_faces(faces: np.ndarray) -> np.ndarray:
    """Faces with the same three vertices, in any order, are kept once (the first)."""
    _, first = np.unique(np.sort(faces, axis=1), axis=0, return_index=True)
    return faces[np.sort(first)]


def _triangle_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    corners = vertices[faces]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    return np.linalg.norm(normals, axis=1) / 2


def decimate(vertices: np.ndarray, faces: np.ndarray, target_faces: int) -> Mesh:
    """Quadric edge-collapse decimation (fast_simplification) to about `target_faces`."""
    if len(faces) <= target_faces:
        return vertices, faces
    vertices, faces = fast_simplification.simplify(vertices, faces, target_count=target_faces)
    return drop_unreferenced_vertices(vertices, faces.astype(np.int64))
