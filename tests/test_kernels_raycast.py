"""Ray casts: both backends equal the naive Moller-Trumbore loop (every hit, sorted, face ids, normals)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from inscene.kernels.raycast import RayCaster, cast_rays
from naive import naive_ray_hits

YCB = Path(__file__).resolve().parents[1].parent / "shared/data/ycb"
BACKENDS = ["bvh", "embree"]


def meshes() -> dict[str, trimesh.Trimesh]:
    box = trimesh.creation.box((0.1, 0.08, 0.06))
    cup = trimesh.Trimesh(box.vertices, box.faces[box.face_normals[:, 2] < 0.5], process=False)
    two = trimesh.util.concatenate([trimesh.creation.icosphere(2, radius=0.04),
                                    trimesh.creation.icosphere(1, radius=0.02).apply_translation([0, 0, 0.1])])
    return {"sphere": trimesh.creation.icosphere(3, radius=0.05), "open_box": cup, "two_spheres": two,
            "torus": trimesh.creation.torus(0.05, 0.015, major_sections=24, minor_sections=12)}


def random_rays(mesh: trimesh.Trimesh, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rays from points around the mesh towards random points in its box (some start inside, some miss)."""
    rng = np.random.default_rng(seed)
    lo, hi = mesh.bounds
    size = hi - lo
    o = lo - 0.5 * size + rng.random((n, 3)) * 2 * size
    t = lo + rng.random((n, 3)) * size
    d = (t - o) * rng.uniform(0.5, 3.0, size=(n, 1))  # any length
    return o, d


def assert_matches_naive(hits, mesh, o, d, t_max=np.inf, atol_t=1e-9):
    ref = naive_ray_hits(mesh.vertices, mesh.faces, o, d, t_max)
    normals = mesh.face_normals
    for r, (t, f) in enumerate(ref):
        c = hits.count[r]
        assert c == len(t), f"ray {r}: {c} hits, naive {len(t)}"
        np.testing.assert_allclose(hits.t[r, :c], t, atol=atol_t, rtol=0)
        # faces at (numerically) equal t may come in either order
        assert sorted(hits.face[r, :c]) == sorted(f)
        np.testing.assert_allclose(hits.normal[r, :c], normals[hits.face[r, :c]], atol=1e-6)
        assert np.all(hits.face[r, c:] == -1) and np.all(np.isinf(hits.t[r, c:]))
        assert np.all(hits.normal[r, c:] == 0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["sphere", "open_box", "two_spheres", "torus"])
@pytest.mark.parametrize("n", [1, 17, 300])
def test_cast_equals_naive(backend, name, n):
    mesh = meshes()[name]
    o, d = random_rays(mesh, n, seed=n)
    hits = RayCaster(mesh, backend).cast(o, d)
    assert hits.t.shape == hits.face.shape == hits.normal.shape[:2] and hits.count.shape == (n,)
    assert_matches_naive(hits, mesh, o, d, atol_t=1e-9 if backend == "bvh" else 1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_t_max_and_many_hits(backend):
    """A ray along a row of 12 spheres: 24 hits (more than the first guess of K), cut by t_max."""
    row = trimesh.util.concatenate([trimesh.creation.icosphere(1, radius=0.01).apply_translation([0.03 * i, 0, 0])
                                    for i in range(12)])
    o = np.array([[-0.05, 0.001, 0.002], [-0.05, 0.5, 0.0]])
    d = np.array([[1.0, 0, 0], [1.0, 0, 0]])
    caster = RayCaster(row, backend)
    hits = caster.cast(o, d, max_hits=4)
    assert list(hits.count) == [24, 0]
    assert np.all(np.diff(hits.t[0]) > 0)
    assert_matches_naive(hits, row, o, d, atol_t=1e-9 if backend == "bvh" else 1e-6)
    cut = caster.cast(o, d, t_max=0.05 + 0.03 * 2.5)  # spheres 0, 1, 2
    assert list(cut.count) == [6, 0]
    assert_matches_naive(cut, row, o, d, t_max=0.05 + 0.03 * 2.5, atol_t=1e-9 if backend == "bvh" else 1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_front_and_back_by_normal(backend):
    sphere = trimesh.creation.icosphere(3, radius=0.05)
    rng = np.random.default_rng(1)
    o = np.tile([0.0, 0.0, -0.5], (50, 1))
    d = np.column_stack([rng.uniform(-0.025, 0.025, (50, 2)), np.full(50, 0.5)])
    hits = cast_rays(sphere, o, d, backend=backend)
    assert np.all(hits.count == 2)
    dn = d / np.linalg.norm(d, axis=1, keepdims=True)
    assert np.all(np.einsum("rj,rj->r", hits.normal[:, 0], dn) < 0)  # entering: front face
    assert np.all(np.einsum("rj,rj->r", hits.normal[:, 1], dn) > 0)  # leaving: back face
    pts = hits.points(o, d)
    np.testing.assert_allclose(np.linalg.norm(pts, axis=-1), 0.05, atol=2e-3)  # on the faceted sphere


def test_backends_agree_on_ycb():
    path = YCB / "025_mug/textured.obj"
    if not path.exists():
        pytest.skip(f"YCB mesh {path} is not present (../shared/data/ycb)")
    mug = trimesh.load(path, force="mesh")
    mug.apply_scale(0.01)
    o, d = random_rays(mug, 3000, seed=2)
    a = RayCaster(mug, "bvh").cast(o, d)
    b = RayCaster(mug, "embree").cast(o, d)
    same = a.count == b.count
    assert same.mean() > 0.995  # rays through an edge or a vertex may differ
    k = min(a.t.shape[1], b.t.shape[1])
    fin = (a.face[same, :k] >= 0)
    np.testing.assert_allclose(a.t[same, :k][fin], b.t[same, :k][fin], atol=1e-6)
    assert np.mean(a.face[same, :k][fin] == b.face[same, :k][fin]) > 0.999
    assert_matches_naive(a, mug, o[:40], d[:40])


def test_errors():
    mesh = trimesh.creation.icosphere(1)
    with pytest.raises(ValueError, match="backend"):
        RayCaster(mesh, "optix")
    caster = RayCaster(mesh)
    assert caster.backend == "embree"  # the default: it measured faster (bench/kernels.py)
    with pytest.raises(ValueError, match="same shape"):
        caster.cast(np.zeros((3, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="non-zero"):
        caster.cast(np.zeros((1, 3)), np.zeros((1, 3)))
    empty = caster.cast(np.zeros((0, 3)), np.zeros((0, 3)))
    assert empty.t.shape[0] == 0 and empty.count.shape == (0,)


def test_parallel_and_serial_paths_agree():
    from inscene.kernels import set_parallel_scale

    mesh = meshes()["torus"]
    o, d = random_rays(mesh, 5000, seed=3)
    out = []
    for scale in (0.0, np.inf):
        previous = set_parallel_scale(scale)
        try:
            out.append(RayCaster(mesh, "bvh").cast(o, d))
        finally:
            set_parallel_scale(previous)
    assert np.array_equal(out[0].t, out[1].t) and np.array_equal(out[0].face, out[1].face)
