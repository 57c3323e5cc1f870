"""SDF grid: lookups equal the naive trilinear twin (values, gradients), gradients equal finite differences,
grid values equal the exact signed distance, signs are right for YCB meshes and open meshes, the cache works."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from inscene.kernels.bvh import BVH
from inscene.kernels.sdf import SDFGrid, build_sdf, sdf_grid, sdf_lookup, sdf_torch
from inscene.kernels.winding import winding_number
from naive import naive_closest_distance, naive_signed_distance, naive_trilinear, naive_winding_number

YCB = Path(__file__).resolve().parents[1].parent / "shared/data/ycb"


def open_box() -> trimesh.Trimesh:
    """A 10 x 8 x 6 cm box without its top (+z) face: a cup-like open mesh."""
    box = trimesh.creation.box((0.10, 0.08, 0.06))
    keep = box.face_normals[:, 2] < 0.5
    return trimesh.Trimesh(box.vertices, box.faces[keep], process=False)


def open_cylinder() -> trimesh.Trimesh:
    """A tube (radius 3 cm, height 8 cm) without caps."""
    cyl = trimesh.creation.cylinder(radius=0.03, height=0.08, sections=32)
    keep = np.abs(cyl.face_normals[:, 2]) < 0.5
    return trimesh.Trimesh(cyl.vertices, cyl.faces[keep], process=False)


def closed_meshes() -> dict[str, trimesh.Trimesh]:
    return {"box": trimesh.creation.box((0.1, 0.06, 0.04)),
            "sphere": trimesh.creation.icosphere(2, radius=0.05),
            "cylinder": trimesh.creation.cylinder(radius=0.03, height=0.1, sections=24)}


def ycb(name: str) -> trimesh.Trimesh:
    files = {"025_mug": ("025_mug/textured.obj", 0.01), "006_mustard_bottle": ("006_mustard_bottle/006_mustard_bottle.obj", 1.0)}
    rel, scale = files[name]
    path = YCB / rel
    if not path.exists():
        pytest.skip(f"YCB mesh {path} is not present (../shared/data/ycb)")
    mesh = trimesh.load(path, force="mesh", skip_materials=True)
    mesh.apply_scale(scale)
    return mesh


def random_grid(shape: tuple[int, int, int], seed: int) -> SDFGrid:
    rng = np.random.default_rng(seed)
    return SDFGrid(rng.normal(size=shape).astype(np.float32), rng.normal(size=3), float(rng.uniform(0.01, 0.1)))


def points_around(grid: SDFGrid, n: int, seed: int, margin: float = 0.3) -> np.ndarray:
    """Points in the grid's box grown by ``margin`` of its size on each side (some outside)."""
    lo, hi = grid.bounds
    rng = np.random.default_rng(seed)
    return lo - margin * (hi - lo) + rng.random((n, 3)) * (1 + 2 * margin) * (hi - lo)


# --------------------------------------------------------------------------- lookup vs naive twin


@pytest.mark.parametrize("shape", [(2, 2, 2), (5, 7, 3), (16, 9, 12)])
@pytest.mark.parametrize("n", [1, 10, 500])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lookup_equals_naive(shape, n, dtype):
    grid = random_grid(shape, seed=n)
    p = points_around(grid, n, seed=len(shape) + n).astype(dtype)
    d, g = sdf_lookup(grid, p)
    dn, gn = naive_trilinear(grid.values, grid.origin, grid.spacing, p.astype(np.float64))
    assert d.dtype == dtype and g.dtype == dtype and d.shape == (n,) and g.shape == (n, 3)
    tol = 1e-4 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(d, dn, rtol=tol, atol=tol)
    np.testing.assert_allclose(g, gn, rtol=tol, atol=tol * 10 / grid.spacing)


def test_lookup_shapes_nan_and_errors():
    grid = random_grid((4, 4, 4), 0)
    p = points_around(grid, 24, 1).reshape(2, 3, 4, 3)
    d, g = sdf_lookup(grid, p)
    assert d.shape == (2, 3, 4) and g.shape == (2, 3, 4, 3)
    d2, none = sdf_lookup(grid, p, gradient=False)
    assert none is None and np.array_equal(d, d2)
    d, g = sdf_lookup(grid, np.array([[np.nan, 0, 0], [0, 0, 0]]))
    assert np.isnan(d[0]) and np.all(np.isnan(g[0])) and np.isfinite(d[1])
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        sdf_lookup(grid, np.zeros((5, 2)))


def test_gradient_equals_finite_differences():
    """Analytic gradient of the trilinear field vs central differences (float64), away from cell faces and box faces."""
    grid = random_grid((6, 5, 7), 3)
    rng = np.random.default_rng(4)
    n = 300
    shape = np.array(grid.shape)
    # cell index + fraction in (0.1, 0.9): no cell face within 0.1 cells; 1/3 of the points pushed outside the box
    idx = rng.integers(0, shape - 1, size=(n, 3)) + rng.uniform(0.1, 0.9, size=(n, 3))
    out = rng.random(n) < 0.33
    idx[out] += np.sign(rng.normal(size=(out.sum(), 3))) * rng.uniform(1.1, 3.0, size=(out.sum(), 3)) * shape
    p = grid.origin + grid.spacing * idx
    _, g = sdf_lookup(grid, p)
    eps = 1e-6 * grid.spacing
    fd = np.empty_like(p)
    for k in range(3):
        e = np.zeros(3)
        e[k] = eps
        fd[:, k] = (sdf_lookup(grid, p + e, False)[0] - sdf_lookup(grid, p - e, False)[0]) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_autograd(dtype):
    grid = random_grid((8, 6, 7), 5)
    p = torch.tensor(points_around(grid, 200, 6), dtype=dtype, requires_grad=True)
    d = sdf_torch(grid, p)
    weights = torch.linspace(-1, 2, 200, dtype=dtype)
    (d * weights).sum().backward()
    dn, gn = sdf_lookup(grid, p.detach().numpy())
    assert d.dtype == dtype and p.grad.dtype == dtype
    np.testing.assert_allclose(d.detach().numpy(), dn, rtol=1e-6)
    np.testing.assert_allclose(p.grad.numpy(), weights.numpy()[:, None] * gn, rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # no gradient needed: still a value
        assert sdf_torch(grid, p).shape == (200,)


def test_torch_gradcheck():
    grid = random_grid((5, 5, 5), 7)
    rng = np.random.default_rng(8)
    idx = rng.integers(0, 4, size=(20, 3)) + rng.uniform(0.2, 0.8, size=(20, 3))  # no kinks within 1e-6
    p = torch.tensor(grid.origin + grid.spacing * idx, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: sdf_torch(grid, x), (p,), eps=1e-7, atol=1e-5)


# --------------------------------------------------------------------------- grid values and signs


@pytest.mark.parametrize("name", ["box", "sphere", "cylinder"])
@pytest.mark.parametrize("resolution", [8, 20])
def test_grid_values_equal_exact_signed_distance(name, resolution):
    mesh = closed_meshes()[name]
    grid = build_sdf(mesh, resolution=resolution, padding=0.2)
    nodes = grid.origin + grid.spacing * np.stack(np.indices(grid.shape), -1).reshape(-1, 3)
    rng = np.random.default_rng(resolution)
    sel = rng.choice(len(nodes), size=min(400, len(nodes)), replace=False)
    exact = naive_signed_distance(mesh.vertices, mesh.faces, nodes[sel])
    np.testing.assert_allclose(grid.values.reshape(-1)[sel], exact, atol=1e-6)


@pytest.mark.parametrize("name", ["box", "sphere"])
def test_interpolation_error_is_bounded(name):
    """Between nodes the trilinear value of a 1-Lipschitz field is within sqrt(3) h of the exact distance."""
    mesh = closed_meshes()[name]
    grid = build_sdf(mesh, resolution=24)
    p = points_around(grid, 400, 9, margin=0.0)
    exact = naive_signed_distance(mesh.vertices, mesh.faces, p)
    err = np.abs(grid.lookup(p, False)[0] - exact)
    assert err.max() <= math.sqrt(3) * grid.spacing
    assert np.median(err) < 0.25 * grid.spacing


def test_fast_winding_number_equals_exact():
    mesh = trimesh.creation.icosphere(3, radius=0.05)
    bvh = BVH.build(mesh.vertices, mesh.faces)
    p = np.random.default_rng(10).uniform(-0.08, 0.08, size=(300, 3))
    exact = naive_winding_number(mesh.vertices, mesh.faces, p)
    np.testing.assert_allclose(winding_number(bvh, p, beta=np.inf), exact, atol=1e-9)
    assert np.abs(winding_number(bvh, p, beta=2.0) - exact).max() < 0.1
    np.testing.assert_allclose(bvh.nearest_distance(p)[0], naive_closest_distance(mesh.vertices, mesh.faces, p),
                               atol=1e-12)


def _check_signs(mesh: trimesh.Trimesh, grid: SDFGrid, n: int, seed: int) -> int:
    """Lookup signs vs the exact winding number where neither the interpolation nor the threshold is in doubt."""
    p = points_around(grid, n, seed, margin=0.0)
    w = naive_winding_number(mesh.vertices, mesh.faces, p)
    d_exact = naive_closest_distance(mesh.vertices, mesh.faces, p)
    d = grid.lookup(p, False)[0]
    sure = (np.abs(np.abs(w) - 0.5) > 0.1) & (d_exact > math.sqrt(3) * grid.spacing)
    inside = np.abs(w) > 0.5
    assert np.array_equal(d[sure] < 0, inside[sure])
    return int((sure & inside).sum())


@pytest.mark.parametrize("make", [open_box, open_cylinder])
def test_signs_open_mesh(make):
    mesh = make()
    assert not mesh.is_watertight
    grid = build_sdf(mesh, resolution=32)
    n_inside = _check_signs(mesh, grid, 400, 11)
    assert n_inside > 20  # the test saw inside points
    lo, hi = mesh.bounds
    c = 0.5 * (lo + hi)
    h = hi[2] - lo[2]
    # low in the cup: inside; above the opening: outside; well below the bottom: outside
    d = grid.lookup(np.array([c - [0, 0, 0.3 * h], c + [0, 0, 0.8 * h], c - [0, 0, 1.2 * h]]), False)[0]
    assert d[0] < 0 and d[1] > 0 and d[2] > 0


@pytest.mark.parametrize("name", ["025_mug", "006_mustard_bottle"])
def test_signs_ycb(name, tmp_path, monkeypatch):
    monkeypatch.setenv("INSCENE_CACHE", str(tmp_path))
    mesh = ycb(name)
    grid = sdf_grid(mesh, resolution=64)
    n_inside = _check_signs(mesh, grid, 80, 12)  # few for the thin-walled mug: see the near-surface points
    # near the surface: vertices pushed along +-normal by 1.5 cells (thin walls: judged by the exact sign)
    rng = np.random.default_rng(13)
    sel = rng.choice(len(mesh.vertices), 80, replace=False)
    v, n = mesh.vertices[sel], mesh.vertex_normals[sel]
    p = np.concatenate([v + 1.5 * grid.spacing * n, v - 1.5 * grid.spacing * n])
    w = naive_winding_number(mesh.vertices, mesh.faces, p)
    d_exact = naive_closest_distance(mesh.vertices, mesh.faces, p)
    d = grid.lookup(p, False)[0]
    sure = np.abs(np.abs(w) - 0.5) > 0.1
    agree = (d < 0) == (np.abs(w) > 0.5)
    assert np.mean(agree[sure]) > 0.95
    assert np.all(agree[sure & (d_exact > math.sqrt(3) * grid.spacing)])
    assert n_inside + np.sum(sure & (np.abs(w) > 0.5)) >= 20  # the test saw inside points


def test_mug_cavity_is_outside(tmp_path, monkeypatch):
    """The air in the cup is outside the solid: positive, about the inner radius away from the wall."""
    monkeypatch.setenv("INSCENE_CACHE", str(tmp_path))
    mesh = ycb("025_mug")
    grid = sdf_grid(mesh, resolution=64)
    lo, hi = mesh.bounds
    ext = hi - lo  # z is the mug's axis, the handle is on +x, the body is round (diameter = y extent)
    p = np.array([[lo[0] + 0.5 * ext[1], lo[1] + 0.5 * ext[1], lo[2] + 0.5 * ext[2]]])
    exact = naive_signed_distance(mesh.vertices, mesh.faces, p)
    d = grid.lookup(p, False)[0]
    assert exact[0] > 0.015 and d[0] > 0.01 and abs(d[0] - exact[0]) <= math.sqrt(3) * grid.spacing


def test_lookup_outside_the_grid():
    """Outside: the value at the clamped point plus the distance to it, continuous across the box face."""
    grid = build_sdf(closed_meshes()["sphere"], resolution=16)
    lo, hi = grid.bounds
    c = 0.5 * (lo + hi)
    for k in range(3):
        e = np.zeros(3)
        e[k] = 1.0
        face = c.copy()
        face[k] = hi[k]
        p = np.stack([face - 1e-9 * e, face + 1e-9 * e, face + 0.5 * e])
        d, g = grid.lookup(p)
        assert abs(d[1] - d[0]) < 1e-6
        np.testing.assert_allclose(d[2], d[1] + 0.5, atol=1e-6)
        np.testing.assert_allclose(g[2], e, atol=1e-12)
    d, g = grid.lookup(np.array([hi + [1.0, 2.0, 2.0]]))
    np.testing.assert_allclose(d[0], grid.values[-1, -1, -1] + 3.0, rtol=1e-6)
    np.testing.assert_allclose(g[0], [1 / 3, 2 / 3, 2 / 3], atol=1e-12)


# --------------------------------------------------------------------------- cache


def test_cache_roundtrip(tmp_path, monkeypatch):
    monkeypatch.setenv("INSCENE_CACHE", str(tmp_path))
    mesh = closed_meshes()["sphere"]
    a = sdf_grid(mesh, resolution=12)
    files = list((tmp_path / "sdf").iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"  # no temporary file left behind
    b = sdf_grid(mesh, resolution=12)
    assert np.array_equal(a.values, b.values) and np.array_equal(a.origin, b.origin) and a.spacing == b.spacing
    assert b.meta["key"] == a.meta["key"]
    sdf_grid(mesh, resolution=13)
    moved = mesh.copy()
    moved.apply_translation([0.01, 0, 0])
    sdf_grid(moved, resolution=12)
    assert len(list((tmp_path / "sdf").iterdir())) == 3
    assert sdf_grid(mesh, resolution=12, cache=False).meta.get("key") is None
    for damage in (b"damaged", files[0].read_bytes()[:200]):  # garbage, truncated zip
        files[0].write_bytes(damage)
        c = sdf_grid(mesh, resolution=12)  # a damaged entry is rebuilt
        assert np.array_equal(a.values, c.values)
    exact = sdf_grid(mesh, resolution=12, beta=np.inf)  # the parameters survive the round trip
    assert sdf_grid(mesh, resolution=12, beta=np.inf).meta["beta"] == np.inf and exact.meta["beta"] == np.inf


def test_degenerate_faces():
    """Zero-area faces (repeated or collinear vertices) are harmless: distances equal the naive twin's."""
    mesh = trimesh.creation.icosphere(1, radius=0.05)
    v = np.concatenate([mesh.vertices, [[0.1, 0, 0], [0.2, 0, 0], [0.3, 0, 0]]])
    n = len(mesh.vertices)
    f = np.concatenate([mesh.faces, [[n, n + 1, n + 2], [n, n, n + 1], [0, 0, 0]]])
    p = np.random.default_rng(14).uniform(-0.1, 0.35, size=(200, 3))
    d, _ = BVH.build(v, f).nearest_distance(p)
    np.testing.assert_allclose(d, naive_closest_distance(v, f, p), atol=1e-12)
    grid = build_sdf((v, f), resolution=12)
    assert np.all(np.isfinite(grid.values))


def test_build_rejects_bad_input():
    with pytest.raises(ValueError, match="resolution"):
        build_sdf(trimesh.creation.box(), resolution=2)
    with pytest.raises(ValueError, match="faces"):
        build_sdf((np.zeros((3, 3)), np.zeros((0, 3), int)))


def test_parallel_and_serial_paths_agree():
    """The same kernels on all threads (scale 0) and on one (scale inf) give identical results."""
    from inscene.kernels import set_parallel_scale

    mesh = trimesh.creation.icosphere(2, radius=0.05)
    grid = random_grid((9, 8, 7), 15)
    p = points_around(grid, 20_000, 16)
    bvh = BVH.build(mesh.vertices, mesh.faces)
    q = np.random.default_rng(17).uniform(-0.08, 0.08, size=(3000, 3))
    results = []
    for scale in (0.0, np.inf):
        previous = set_parallel_scale(scale)
        try:
            results.append((sdf_lookup(grid, p), build_sdf(mesh, resolution=16).values, bvh.nearest_distance(q),
                            winding_number(bvh, q)))
        finally:
            set_parallel_scale(previous)
    (a, ga, na, wa), (b, gb, nb, wb) = results
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and np.array_equal(ga, gb)
    assert np.array_equal(na[0], nb[0]) and np.array_equal(wa, wb)
    with pytest.raises(ValueError, match="scale"):
        set_parallel_scale(-1)
