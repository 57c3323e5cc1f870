"""Contact lifting against a naive twin (loop over vertices, brute-force ray-triangle test over all faces)."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from conftest import shared_data
from inscene.engine.contact.lifting import contact_candidates, lift_contacts
from inscene.kernels import RayCaster, project

K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
SIZE = (480, 640)
TOL = 1e-5  # metres: embree casts in float32 (~1e-7 relative at 0.5 m) and the twin in float64


def _pose(z: float = 0.5, seed: int = 0) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = trimesh.transformations.random_rotation_matrix(np.random.default_rng(seed).random(3))[:3, :3]
    T[:3, 3] = (0.01, -0.02, z)
    return T


def _naive(vertices, normals, candidates, mesh, T, mask, max_distance):
    """Loop over candidates: ray from the camera centre through the vertex, all hits (Moller-Trumbore)."""
    v_cam = mesh.vertices @ T[:3, :3].T + T[:3, 3]
    a, b, c = (v_cam[mesh.faces[:, k]] for k in range(3))
    fn = np.cross(b - a, c - a)
    length = np.linalg.norm(fn, axis=1, keepdims=True)
    fn = np.divide(fn, length, out=np.zeros_like(fn), where=length > 0)  # degenerate faces: no normal, never facing
    out = []
    for i, vid in enumerate(candidates):
        v, n = vertices[vid], normals[vid]
        if v[2] <= 0:
            continue
        if mask is not None:
            x, y = np.floor(project(v, K) + 0.5).astype(int)
            if not (0 <= x < mask.shape[1] and 0 <= y < mask.shape[0] and mask[y, x]):
                continue
        d = v / np.linalg.norm(v)
        e1, e2 = b - a, c - a
        p = np.cross(d, e2)
        det = (e1 * p).sum(1)
        with np.errstate(divide="ignore", invalid="ignore"):
            u = -(a * p).sum(1) / det
            q = np.cross(-a, e1)
            w = (q @ d) / det
            t = (e2 * q).sum(1) / det
        hit = (np.abs(det) > 1e-15) & (u >= 0) & (w >= 0) & (u + w <= 1) & (t >= 0)
        best = None
        for f in np.flatnonzero(hit):
            gap = abs(t[f] - np.linalg.norm(v))
            if fn[f] @ n < 0 and gap <= max_distance and (best is None or gap < best[0]):
                best = (gap, t[f] * d, fn[f])
        if best is not None:
            out.append((i, vid, best[1], best[2]))
    return out


def _compare(lifted, naive, tol=TOL):
    assert lifted.index.tolist() == [o[0] for o in naive]
    assert lifted.vertex.tolist() == [o[1] for o in naive]
    if naive:
        assert np.abs(lifted.target - np.array([o[2] for o in naive])).max() < tol
        assert np.abs(lifted.normal - np.array([o[3] for o in naive])).max() < 1e-5


def _scene_points(mesh, T, n, seed, reach=0.04):
    """Points near the object surface (camera frame), offset along the surface normal, with random-sign normals,
    plus points away from the object."""
    rng = np.random.default_rng(seed)
    pts, face = trimesh.sample.sample_surface(mesh, n, seed=seed)
    nrm = mesh.face_normals[face]
    off = rng.uniform(-reach, reach, n)
    p = pts + off[:, None] * nrm
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    hand_n = sign[:, None] * nrm + 0.3 * rng.normal(size=(n, 3))
    hand_n /= np.linalg.norm(hand_n, axis=1, keepdims=True)
    far = rng.uniform(-0.2, 0.2, (n // 4, 3)) + (0, 0, 0.5)
    far_n = rng.normal(size=far.shape)
    far_n /= np.linalg.norm(far_n, axis=1, keepdims=True)
    v = np.concatenate([p @ T[:3, :3].T + T[:3, 3], far])
    nn = np.concatenate([hand_n @ T[:3, :3].T, far_n])
    return v, nn


MESHES = {"box": lambda: trimesh.creation.box(extents=(0.08, 0.05, 0.12)),
          "sphere": lambda: trimesh.creation.icosphere(subdivisions=3, radius=0.05),
          "capsule": lambda: trimesh.creation.capsule(height=0.1, radius=0.03)}


@pytest.mark.parametrize("name", sorted(MESHES))
@pytest.mark.parametrize("max_distance", [0.01, 0.03])
@pytest.mark.parametrize("backend", ["auto", "bvh"])
def test_lifting_matches_naive_twin(name, max_distance, backend):
    mesh = MESHES[name]()
    T = _pose(seed=len(name))
    v, n = _scene_points(mesh, T, 400, seed=3, reach=1.5 * max_distance)
    cand = np.random.default_rng(1).permutation(len(v))[:360]
    caster = RayCaster(mesh, backend)
    lifted = lift_contacts(v, n, cand, K, T, caster, max_distance=max_distance)
    naive = _naive(v, n, cand, mesh, T, None, max_distance)
    assert len(naive) > 15
    _compare(lifted, naive)
    # a mask: only the left half of the image counts
    mask = np.zeros(SIZE, bool)
    mask[:, :320] = True
    lifted_m = lift_contacts(v, n, cand, K, T, caster, mask=mask, max_distance=max_distance)
    naive_m = _naive(v, n, cand, mesh, T, mask, max_distance)
    assert 0 < len(naive_m) < len(naive)
    _compare(lifted_m, naive_m)


def test_front_back_and_silhouette():
    """Box at z in [0.45, 0.55] facing the camera; vertices on the optical axis and beside the box."""
    mesh = trimesh.creation.box(extents=(0.1, 0.1, 0.1))
    T = np.eye(4)
    T[2, 3] = 0.5
    caster = RayCaster(mesh)
    v = np.array([[0.0, 0.0, 0.44],   # in front, normal away from the camera -> front face z = 0.45
                  [0.0, 0.0, 0.56],   # behind, normal towards the camera -> back face z = 0.55
                  [0.0, 0.0, 0.44],   # in front but facing the camera: no face opposes it within reach
                  [0.08, 0.0, 0.5],   # beside the box (outside its silhouette)
                  [0.01, 0.01, 0.40]])  # in front, 5 cm from the front face: too far
    n = np.array([[0, 0, 1.0], [0, 0, -1.0], [0, 0, -1.0], [-1.0, 0, 0], [0, 0, 1.0]])
    lifted = lift_contacts(v, n, np.arange(5), K, T, caster, max_distance=0.03)
    assert lifted.index.tolist() == [0, 1]
    np.testing.assert_allclose(lifted.target[0], [0, 0, 0.45], atol=1e-6)
    np.testing.assert_allclose(lifted.normal[0], [0, 0, -1], atol=1e-6)
    np.testing.assert_allclose(lifted.target[1], [0, 0, 0.55], atol=1e-6)
    np.testing.assert_allclose(lifted.normal[1], [0, 0, 1], atol=1e-6)
    # the vertex behind, with a larger reach, still picks the back face (the front one faces it the wrong way)
    far = lift_contacts(v[1:2], n[1:2], np.array([0]), K, T, caster, max_distance=0.2)
    np.testing.assert_allclose(far.target[0], [0, 0, 0.55], atol=1e-6)
    # a supplied mask wins: nothing where the mask is empty, and candidates map to their vertex ids
    empty = lift_contacts(v, n, np.arange(5), K, T, caster, mask=np.zeros(SIZE, bool))
    assert len(empty) == 0
    lifted2 = lift_contacts(v, n, np.array([4, 1, 0]), K, T, caster, mask=np.ones(SIZE, bool))
    assert lifted2.index.tolist() == [1, 2] and lifted2.vertex.tolist() == [1, 0]


def test_bad_shapes_are_clear():
    mesh = trimesh.creation.box()
    caster = RayCaster(mesh)
    v = np.zeros((4, 3))
    with pytest.raises(ValueError, match="normals"):
        lift_contacts(v, np.zeros((3, 3)), np.arange(2), K, np.eye(4), caster)
    with pytest.raises(ValueError, match="candidates"):
        lift_contacts(v, v, np.array([7]), K, np.eye(4), caster)
    with pytest.raises(ValueError, match="T_cam_obj"):
        lift_contacts(v, v, np.arange(2), K, np.eye(3), caster)


def test_contact_candidates(anny_right, mano_synthetic):
    for model in (anny_right, mano_synthetic["right"]):
        ids = contact_candidates(model)
        regions = np.unique(np.concatenate([r.numpy() for k, r in model.regions.items()
                                            if k.endswith("_pad") or k == "palm"]))
        assert 0 < len(ids) <= 250 and np.all(np.diff(ids) > 0) and np.isin(ids, regions).all()
        few = contact_candidates(model, max_count=40)
        assert len(few) == 40 and np.isin(few, regions).all()
        # thinned evenly: every finger pad keeps vertices
        for k, r in model.regions.items():
            if k.endswith("_pad") and len(r):
                assert np.isin(few, r.numpy()).any(), k


def test_lifting_on_the_ycb_mustard_bottle():
    path = shared_data("ycb/006_mustard_bottle")
    obj = next(iter(sorted(path.glob("*.obj"))), None)
    if obj is None:
        pytest.skip(f"no .obj in {path}")
    mesh = trimesh.load(obj, force="mesh", process=False)
    T = _pose(z=0.6, seed=5)
    v, n = _scene_points(mesh, T, 120, seed=9)
    cand = np.arange(len(v))
    lifted = lift_contacts(v, n, cand, K, T, RayCaster(mesh), max_distance=0.03)
    naive = _naive(v, n, cand, mesh, T, None, 0.03)
    assert len(naive) > 10
    _compare(lifted, naive)
