"""Marching cubes against the official fixture, NaN handling, winding, splitting, the optional
clean-up and decimation."""

from __future__ import annotations

import numpy as np
import pytest
from reference import TINY
from safetensors.numpy import load_file

from backend import isosurface
from backend.errors import BadInputError
from backend.isosurface import BLOCK
from backend.meshing import (
    MeshOptions,
    SmallPieceThresholds,
    decimate,
    extract_mesh,
    mesh_volume,
    remove_small_pieces,
    split_parts,
)

MESH_FIXTURE = load_file(TINY / "mesh" / "mcubes_analytic.safetensors")
ANALYTIC = load_file(TINY / "vae" / "hier_analytic_r32.safetensors")
GRIDS = {"dense": ANALYTIC["dense_analytic_r32"], "hierarchical": ANALYTIC["grid"]}


def oriented_triangles(vertices: np.ndarray, faces: np.ndarray, decimals: int) -> list[tuple]:
    """Each triangle as corner positions, rotated so its smallest corner comes first (the
    orientation is kept), sorted."""
    keys = [tuple(row) for row in np.round(vertices, decimals)]
    triangles = []
    for face in faces:
        corners = [keys[index] for index in face]
        first = corners.index(min(corners))
        triangles.append(tuple(corners[first:] + corners[:first]))
    return sorted(triangles)


def sorted_rows(vertices: np.ndarray) -> np.ndarray:
    return vertices[np.lexsort(vertices.T[::-1])]


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    corners = vertices[faces].astype(np.float64)
    return (
        float(np.einsum("ij,ij->i", corners[:, 0], np.cross(corners[:, 1], corners[:, 2])).sum())
        / 6
    )


def sphere_grid(resolution: int, centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """max over spheres of (radius - distance), in grid units: inside-positive."""
    axis = np.linspace(-1, 1, resolution + 1, dtype=np.float32)
    points = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1)
    grid = np.full(points.shape[:3], -1.0, dtype=np.float32)
    for centre, radius in zip(centres, radii, strict=True):
        low = np.searchsorted(axis, centre - radius - 0.05)
        high = np.searchsorted(axis, centre + radius + 0.05)
        box = tuple(slice(lo, hi) for lo, hi in zip(low, high, strict=True))
        distance = np.linalg.norm(points[box] - centre, axis=-1)
        grid[box] = np.maximum(grid[box], (radius - distance) * resolution / 2)
    return grid


def lattice_of_blobs(resolution: int, per_axis: int, radii: np.ndarray) -> np.ndarray:
    """per_axis^3 separated spheres on a regular lattice, radius i for the i-th."""
    cell = 2 / per_axis
    index = np.stack(np.meshgrid(*[np.arange(per_axis)] * 3, indexing="ij"), -1).reshape(-1, 3)
    return sphere_grid(resolution, -1 + cell * (index + 0.5), radii)


@pytest.mark.parametrize("backend", ["skimage", "pymcubes"])
@pytest.mark.parametrize("grid_name", ["dense", "hierarchical"])
def test_marching_cubes_gives_the_official_dense_mesh(backend: str, grid_name: str) -> None:
    if backend == "pymcubes":
        pytest.importorskip("mcubes")
    vertices, faces = extract_mesh(GRIDS[grid_name], backend)
    expected_vertices = MESH_FIXTURE["dense_vertices"]
    expected_faces = MESH_FIXTURE["dense_faces"]
    assert vertices.dtype == np.float64 and faces.dtype == np.int64
    assert vertices.shape == expected_vertices.shape and faces.shape == expected_faces.shape
    # both backends reproduce PyMCubes' arithmetic: the vertices are equal bit for bit
    np.testing.assert_array_equal(sorted_rows(vertices), sorted_rows(expected_vertices))
    assert oriented_triangles(vertices, faces, 15) == oriented_triangles(
        expected_vertices, expected_faces, 15
    )


def test_skimage_and_pymcubes_agree_on_a_rough_grid_with_nan_and_exact_zeros() -> None:
    """Noise exercises all 256 cube cases, ambiguous ones included; exact zeros put vertices on
    grid points (outside, strict > 0 rule); NaN corners are inside."""
    pytest.importorskip("mcubes")
    rng = np.random.default_rng(3)
    grid = rng.normal(size=(18, 19, 20)).astype(np.float32)
    grid[rng.random(grid.shape) < 0.1] = 0.0
    grid[rng.random(grid.shape) < 0.05] = np.nan
    ours = extract_mesh(grid, "skimage")
    official = extract_mesh(grid, "pymcubes")
    assert len(ours[1]) == len(official[1]) > 5000
    # PyMCubes computes some edges of the grid's outer faces in the other direction: 1 ulp
    np.testing.assert_allclose(sorted_rows(ours[0]), sorted_rows(official[0]), rtol=0, atol=1e-12)
    assert oriented_triangles(*ours, 9) == oriented_triangles(*official, 9)


def test_blocks_of_a_large_grid_give_the_whole_grids_mesh() -> None:
    """The skimage path works in blocks of 32 cubes: a surface crossing block boundaries, NaN
    away from it, comes out as PyMCubes' mesh of the whole grid, shared vertices merged."""
    pytest.importorskip("mcubes")
    centres = np.array([[-0.2, 0.05, 0.1], [0.45, -0.3, 0.2], [0.1, 0.5, -0.45]])
    grid = sphere_grid(80, centres, np.array([0.55, 0.35, 0.3]))
    grid[grid < -3] = np.nan
    near_surface = np.flatnonzero((grid > -0.6) & (grid <= 0))
    grid.flat[near_surface[::5]] = 0.0  # vertices on grid points
    assert BLOCK < 80
    ours = extract_mesh(grid, "skimage")
    official = extract_mesh(grid, "pymcubes")
    assert ours[0].shape == official[0].shape and ours[1].shape == official[1].shape
    assert oriented_triangles(*ours, 12) == oriented_triangles(*official, 12)


def test_nan_corners_never_give_a_non_finite_vertex() -> None:
    rng = np.random.default_rng(5)
    grid = rng.normal(size=(16, 16, 16)).astype(np.float32)
    grid[rng.random(grid.shape) < 0.3] = np.nan
    vertices, faces = extract_mesh(grid)
    assert len(faces) > 100
    assert np.isfinite(vertices).all()
    assert np.unique(faces).size == len(vertices)  # no unreferenced vertex


def test_the_hierarchical_grid_drops_exactly_the_faces_pymcubes_makes_nan() -> None:
    raw_vertices = MESH_FIXTURE["hier_vertices"]
    raw_faces = MESH_FIXTURE["hier_faces"]
    finite_faces = np.isfinite(raw_vertices[raw_faces]).all(axis=(1, 2)).sum()
    _, faces = extract_mesh(GRIDS["hierarchical"])
    assert len(faces) == finite_faces == 2680 < len(raw_faces)


def test_vertices_map_from_index_space_to_minus_one_one() -> None:
    """The JSON examples: index-space vertices map to v * 2 / 32 - 1."""
    vertices, _ = extract_mesh(GRIDS["dense"])
    examples = MESH_FIXTURE["dense_vertices"][:5]
    for example in examples:
        assert np.min(np.abs(vertices - example).sum(axis=1)) == 0
    assert vertices.min() >= -1 and vertices.max() <= 1


def test_winding_is_outward_for_inside_positive_data() -> None:
    vertices, faces = extract_mesh(GRIDS["dense"])
    assert signed_volume(vertices, faces) > 0
    grid = sphere_grid(40, np.array([[-0.5, 0, 0], [0.5, 0.1, 0]]), np.array([0.3, 0.25]))
    for piece_vertices, piece_faces in split_parts(*extract_mesh(grid)):
        assert signed_volume(piece_vertices, piece_faces) > 0


def test_a_solid_grid_and_an_empty_grid_give_no_faces() -> None:
    for grid in (np.ones((5, 5, 5), np.float32), np.zeros((5, 5, 5), np.float32)):
        vertices, faces = extract_mesh(grid)
        assert vertices.shape == (0, 3) and faces.shape == (0, 3)
    assert mesh_volume(np.full((5, 5, 5), np.nan, np.float32), 0) == []
    enclosed = np.full((9, 9, 9), -1, np.float32)
    enclosed[2:7, 2:7, 2:7] = np.nan  # NaN (inside) meets the outside: only NaN faces
    enclosed[4, 4, 4] = 1
    assert extract_mesh(enclosed)[1].shape == (0, 3)


def test_bad_grids_and_backends_are_refused() -> None:
    with pytest.raises(BadInputError, match="3-D"):
        extract_mesh(np.zeros((4, 4), np.float32))
    with pytest.raises(BadInputError, match="floats"):
        extract_mesh(np.zeros((4, 4, 4), np.int32))
    with pytest.raises(BadInputError, match="unknown marching-cubes backend"):
        extract_mesh(GRIDS["dense"], "vtk")
    with pytest.raises(BadInputError, match="unknown marching-cubes backend"):
        MeshOptions(marching_cubes="vtk")


def test_split_parts_reindexes_each_component_locally() -> None:
    vertices = np.arange(21, dtype=np.float64).reshape(7, 3)
    faces = np.array([[4, 5, 6], [0, 1, 2], [1, 2, 3]])
    parts = split_parts(vertices, faces)
    assert len(parts) == 2
    (first_vertices, first_faces), (second_vertices, second_faces) = parts
    np.testing.assert_array_equal(first_vertices, vertices[:4])
    np.testing.assert_array_equal(first_faces, [[0, 1, 2], [1, 2, 3]])
    np.testing.assert_array_equal(second_vertices, vertices[4:])
    np.testing.assert_array_equal(second_faces, [[0, 1, 2]])


def test_every_one_of_343_blobs_is_kept_by_default() -> None:
    rng = np.random.default_rng(11)
    radii = rng.uniform(0.03, 0.09, size=343)
    parts = mesh_volume(lattice_of_blobs(128, 7, radii), 1)
    assert len(parts) == 343
    assert all(part.volume == 1 for part in parts)
    face_counts = [len(part.faces) for part in parts]
    assert face_counts == sorted(face_counts, reverse=True)
    assert parts[0].vertices.dtype == np.float32 and parts[0].faces.dtype == np.int32


def test_remove_small_pieces_drops_floaters_and_keeps_the_big_parts() -> None:
    centres = np.array([[-0.5, -0.5, 0], [0.5, 0.5, 0], [0.6, -0.6, 0.6], [-0.6, 0.6, -0.6]])
    radii = np.array([0.4, 0.35, 0.035, 0.03])  # two parts; two 32-face floaters, 4% of the box
    grid = sphere_grid(64, centres, radii)
    assert len(mesh_volume(grid, 0)) == 4
    cleaned = mesh_volume(grid, 0, MeshOptions(remove_small_pieces=True))
    assert len(cleaned) == 2
    kept_centres = sorted(tuple(np.round(part.vertices.mean(axis=0), 1)) for part in cleaned)
    assert kept_centres == [(-0.5, -0.5, 0.0), (0.5, 0.5, 0.0)]


def test_small_piece_thresholds_are_the_demos_and_can_be_changed() -> None:
    thresholds = SmallPieceThresholds()
    assert (thresholds.min_diagonal_fraction, thresholds.min_faces) == (0.05, 25)
    grid = sphere_grid(64, np.array([[-0.5, 0, 0], [0.5, 0, 0]]), np.array([0.4, 0.1]))
    vertices, faces = extract_mesh(grid)
    strict = SmallPieceThresholds(min_diagonal_fraction=0.2)
    many_faces = SmallPieceThresholds(min_diagonal_fraction=0, min_faces=len(faces) // 2)
    assert len(split_parts(*remove_small_pieces(vertices, faces, thresholds))) == 2
    assert len(split_parts(*remove_small_pieces(vertices, faces, strict))) == 1
    assert len(split_parts(*remove_small_pieces(vertices, faces, many_faces))) == 1


def test_close_vertices_merge_and_collapsed_faces_go() -> None:
    """A sliver triangle whose two corners are 1e-9 apart collapses; the rest stays."""
    square = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [1e-9, 0, 0]], np.float64)
    faces = np.array([[0, 1, 2], [0, 2, 3], [0, 4, 3]])
    thresholds = SmallPieceThresholds(min_diagonal_fraction=0, min_faces=0)
    vertices, kept = remove_small_pieces(square, faces, thresholds)
    assert len(vertices) == 4 and len(kept) == 2
    vertices, kept = remove_small_pieces(square[[0, 1, 4]], np.array([[0, 1, 2]]), thresholds)
    assert vertices.shape == (0, 3) and kept.shape == (0, 3)


def test_pieces_of_ten_faces_or_fewer_are_always_dropped() -> None:
    grid = sphere_grid(32, np.array([[0, 0, 0]]), np.array([0.5]))
    grid[2, 2, 2] = 1.0  # one inside point: an 8-face octahedron
    vertices, faces = extract_mesh(grid)
    assert sorted(len(piece[1]) for piece in split_parts(vertices, faces))[0] == 8
    assert len(mesh_volume(grid, 0)) == 1


def test_decimation_reaches_about_the_target_per_volume() -> None:
    grid = sphere_grid(96, np.array([[0, 0, 0]]), np.array([0.7]))
    vertices, faces = extract_mesh(grid)
    assert len(faces) > 40_000
    simplified = decimate(vertices, faces, 4000)
    assert 3800 <= len(simplified[1]) <= 4000
    assert np.unique(simplified[1]).size == len(simplified[0])
    assert signed_volume(*simplified) == pytest.approx(signed_volume(vertices, faces), rel=0.02)
    parts = mesh_volume(grid, 0, MeshOptions(simplify=True, target_faces=4000))
    assert len(parts) == 1 and 3800 <= len(parts[0].faces) <= 4000
    assert decimate(vertices, faces, 10**6)[1] is faces


def blocks_holding_the_surface(grid: np.ndarray) -> set[tuple[int, ...]]:
    """Brute force: the origins of the blocks of BLOCK cubes (BLOCK + 1 points, the boundary
    shared) with a finite corner > 0 and one <= 0."""
    origins = set()
    for origin in np.ndindex(*(len(range(0, size - 1, BLOCK)) for size in grid.shape)):
        start = [index * BLOCK for index in origin]
        values = grid[tuple(slice(s, s + BLOCK + 1) for s in start)]
        if (values > 0).any() and (values <= 0).any():
            origins.add(tuple(start))
    return origins


@pytest.mark.parametrize("shape", [(385, 385, 385), (97, 130, 65), (40, 33, 34)])
def test_only_the_blocks_holding_the_surface_are_meshed(monkeypatch, shape) -> None:
    """Blocks whose values are all on one side of 0 or NaN are skipped, and the mesh is still
    PyMCubes' mesh of the whole grid, at sizes that are and are not a multiple of BLOCK + 1."""
    pytest.importorskip("mcubes")
    axes = [np.linspace(-1, 1, size, dtype=np.float32) for size in shape]
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    grid = (0.15 - np.sqrt((x - 0.3) ** 2 + (y + 0.1) ** 2 + z**2)) * 60
    # away from the sphere: NaN for x < 0, inside beyond; whole blocks of NaN, NaN and inside,
    # inside only, and a second surface where the far inside meets the sphere's outer band
    grid = np.where(np.abs(grid) < 3, grid, np.where(x < 0, np.float32(np.nan), np.float32(9)))
    grid[0, 0, 0] = -1.0  # a lone outside corner in a block of NaN and inside points
    expected_blocks = blocks_holding_the_surface(grid)
    all_blocks = np.prod([len(range(0, size - 1, BLOCK)) for size in shape])
    assert 0 < len(expected_blocks) < all_blocks or all_blocks == 1

    meshed: list[tuple] = []
    real_marching_cubes = isosurface.marching_cubes

    def spy(outside_transposed: np.ndarray, **kwargs):
        meshed.append(outside_transposed.shape)
        return real_marching_cubes(outside_transposed, **kwargs)

    monkeypatch.setattr(isosurface, "marching_cubes", spy)
    ours = extract_mesh(grid, "skimage")
    assert len(meshed) == len(expected_blocks)
    official = extract_mesh(grid, "pymcubes")
    assert ours[1].shape == official[1].shape and len(ours[1]) > 0
    assert oriented_triangles(*ours, 9) == oriented_triangles(*official, 9)
