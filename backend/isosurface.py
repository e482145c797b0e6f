"""From an occupancy grid to its iso-surface 0 as one mesh, with PyMCubes' conventions.

Conventions (reference README §3.8): the grid is inside-positive, (R+1)^3 points over [-1, 1],
and may hold NaN where the coarse-to-fine decoder did not query. A corner is inside when its
value is > 0 or NaN (PyMCubes' rule); vertices are interpolated linearly on grid edges and mapped
v * 2 / R - 1; triangles wind counter-clockwise seen from outside.
"""

from __future__ import annotations

import numpy as np
from skimage.measure import marching_cubes

from .errors import BadInputError

MARCHING_CUBES_BACKENDS = ("skimage", "pymcubes")

BLOCK = 32
"""Cubes per block side in the skimage path."""

Mesh = tuple[np.ndarray, np.ndarray]
"""Vertices float64 [V, 3] and faces int64 [F, 3]."""


def extract_mesh(grid: np.ndarray, backend: str = "skimage") -> Mesh:
    """The iso-surface 0 of an inside-positive grid with PyMCubes' conventions: vertices float64
    [V, 3] in [-1, 1], faces int64 [F, 3]. Faces touching a NaN vertex are dropped, then
    unreferenced vertices; vertices on the same grid edge or grid point become one."""
    grid = _checked_grid(grid)
    check_backend(backend)
    surface = _skimage_surface if backend == "skimage" else _pymcubes_surface
    vertices, faces = surface(grid)
    vertices, faces = _merge_vertices_on_same_edge(vertices, faces, grid.shape)
    resolution = np.asarray(grid.shape, dtype=np.float64) - 1
    return vertices * 2 / resolution - 1, faces


def check_backend(backend: str) -> None:
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

    The grid goes through in blocks of BLOCK^3 cubes, only those holding both a finite inside
    and an outside corner (no face of the others would survive): the surface touches few blocks,
    and a small block transposes and interpolates in cache. Triangles are per cube, so the
    blocks give the whole grid's triangles; vertices on shared block faces are merged later."""
    block_vertices, block_faces = [], []
    vertex_count = 0
    for origin in _surface_block_origins(grid):
        vertices, faces = _skimage_block(grid, origin)
        block_vertices.append(vertices)
        block_faces.append(faces + vertex_count)
        vertex_count += len(vertices)
    if vertex_count == 0:
        return _empty_mesh()
    return np.concatenate(block_vertices), np.concatenate(block_faces)


def _surface_block_origins(grid: np.ndarray) -> list[tuple[int, ...]]:
    """The first grid point of every block that has a finite inside corner and an outside one
    (fmax and fmin skip NaN; a block of NaN only has NaN extremes, neither > 0 nor <= 0)."""
    holds_surface = (_per_block(grid, np.fmax) > 0) & (_per_block(grid, np.fmin) <= 0)
    return [tuple(int(i) * BLOCK for i in index) for index in np.argwhere(holds_surface)]


def _per_block(values: np.ndarray, reduce: np.ufunc) -> np.ndarray:
    """`reduce` (a binary ufunc) over each block of BLOCK + 1 points per side; neighbouring
    blocks share their boundary points. A box reduces one axis after the other."""
    for axis in range(values.ndim):
        along = np.moveaxis(values, axis, 0)
        whole = (len(along) - 1) // BLOCK * BLOCK  # points in the blocks of full length
        bins = []
        if whole:
            own = reduce.reduce(along[:whole].reshape(-1, BLOCK, *along.shape[1:]), axis=1)
            bins.append(reduce(own, along[BLOCK : whole + 1 : BLOCK]))
        if whole < len(along) - 1:
            bins.append(reduce.reduce(along[whole:], axis=0, keepdims=True))
        values = np.moveaxis(np.concatenate(bins), 0, axis)
    return values


def _skimage_block(grid: np.ndarray, origin: tuple[int, ...]) -> Mesh:
    """The vertices (grid index space, NaN ones dropped) and faces of the block at `origin`."""
    values = np.ascontiguousarray(grid[tuple(slice(o, o + BLOCK + 1) for o in origin)])
    inside = values > 0
    try:
        midpoints, faces, _, _ = marching_cubes(
            np.ascontiguousarray((values <= 0).T, dtype=np.float32),
            level=0.5,
            method="lorensen",
            gradient_direction="ascent",
            mask=_cubes_with_a_finite_inside_corner(np.ascontiguousarray(inside.T)),
        )
    except RuntimeError:  # skimage's "No surface found": no masked cube is cut
        return _empty_mesh()
    vertices = _interpolate_on_edges(values, midpoints[:, ::-1].astype(np.float64), origin)
    return _drop_non_finite_faces(vertices, faces.astype(np.int64))


def _cubes_with_a_finite_inside_corner(inside: np.ndarray) -> np.ndarray:
    """skimage's cube mask (indexed by each cube's upper corner). Every vertex of a cube whose
    inside corners are all NaN is NaN, so skipping it only skips faces that would be dropped;
    on coarse-to-fine grids that is most of the work."""
    along_x = inside[:-1] | inside[1:]
    along_xy = along_x[:, :-1] | along_x[:, 1:]
    mask = np.zeros_like(inside)
    np.logical_or(along_xy[:, :, :-1], along_xy[:, :, 1:], out=mask[1:, 1:, 1:])
    return mask


def _interpolate_on_edges(
    values: np.ndarray, midpoints: np.ndarray, origin: tuple[int, ...]
) -> np.ndarray:
    """Move each edge midpoint (index space of the block `values`, whose first point is grid
    point `origin`) to where the linear interpolation crosses 0, in grid index space, with
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
    value_start = values[tuple(start.T)].astype(np.float64)
    value_end = values[tuple(end.T)].astype(np.float64)
    offset = np.asarray(origin, dtype=np.intp)
    start_coord = (start[rows, axis] + offset[axis]).astype(np.float64)
    step = end[rows, axis] - start[rows, axis]
    vertices = (lower + offset).astype(np.float64)
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
    return _drop_non_finite_faces(vertices, faces.astype(np.int64))


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
    if on_point.any():  # only vertices of several edges merged into one can collapse a face
        faces = faces[has_three_corners(faces)]
    return vertices[first], faces


def has_three_corners(faces: np.ndarray) -> np.ndarray:
    return (
        (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    )
