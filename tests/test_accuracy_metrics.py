"""The accuracy metrics (inscene.bench.accuracy.metrics) against loop-based naive twins and hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from inscene.bench.accuracy import metrics as M

# ---------------------------------------------------------------- naive twins


def naive_mrpe(est, gt):
    return np.array([math.dist(est[t, 0], gt[t, 0]) for t in range(len(est))])


def naive_mpjpe_rel(est, gt):
    out = []
    for t in range(len(est)):
        errs = [math.dist(est[t, j] - est[t, 0], gt[t, j] - gt[t, 0]) for j in range(est.shape[1])]
        out.append(sum(errs) / len(errs))
    return np.array(out)


def naive_accelerations(k, mask):
    rows = []
    for t in range(1, len(k) - 1):
        if mask[t - 1] and mask[t] and mask[t + 1]:
            rows.append([float(np.sqrt(sum((k[t + 1, j, c] - 2 * k[t, j, c] + k[t - 1, j, c]) ** 2 for c in range(3))))
                         for j in range(k.shape[1])])
    return np.array(rows).reshape(-1, k.shape[1])


def naive_prf(est, gt):
    tp = sum(1 for e, g in zip(est, gt) if e and g)
    fp = sum(1 for e, g in zip(est, gt) if e and not g)
    fn = sum(1 for e, g in zip(est, gt) if not e and g)
    p, r = tp / (tp + fp), tp / (tp + fn)
    return p, r, 2 * p * r / (p + r)


@pytest.mark.parametrize("T,J", [(1, 21), (5, 21), (40, 21), (7, 3)])
def test_position_errors_match_naive(T, J):
    rng = np.random.default_rng(T * 100 + J)
    gt = rng.normal(size=(T, J, 3))
    est = gt + rng.normal(scale=0.01, size=(T, J, 3))
    np.testing.assert_allclose(M.mrpe(est, gt), naive_mrpe(est, gt), rtol=1e-12)
    np.testing.assert_allclose(M.mpjpe_rel(est, gt), naive_mpjpe_rel(est, gt), rtol=1e-12)


def test_position_errors_hand_computed():
    gt = np.zeros((2, 21, 3))
    gt[:, 1:, 0] = 0.05  # fingers 5 cm along x
    est = gt.copy()
    est[0] += [0.003, 0.004, 0.0]  # a pure translation: wrist error 5 mm, root-relative error 0
    est[1, 1:] += [0.0, 0.0, 0.021]  # every joint but the wrist 21 mm off: mean over 21 joints 20 mm
    np.testing.assert_allclose(M.mrpe(est, gt), [0.005, 0.0], atol=1e-15)
    np.testing.assert_allclose(M.mpjpe_rel(est, gt), [0.0, 0.020], atol=1e-15)
    with pytest.raises(ValueError, match="equal shapes"):
        M.mrpe(est[:, :20], gt)


def test_scored_frames_and_coverage():
    gt_valid = np.array([1, 1, 1, 1, 0, 1], bool)
    visible = np.array([0.9, 0.2, np.nan, 0.5, 0.9, 0.31])
    est = np.array([1, 1, 1, 0, 1, 1], bool)
    init = np.array([1, 1, 1, 1, 1, 0], bool)
    scored, in_view = M.scored_frames(gt_valid, visible, est, init)
    assert in_view.tolist() == [True, False, False, True, False, True]
    assert scored.tolist() == [True, False, False, False, False, False]


@pytest.mark.parametrize("T", [3, 10, 57])
def test_accelerations_match_naive_with_gaps(T):
    rng = np.random.default_rng(T)
    k = rng.normal(size=(T, 21, 3))
    mask = rng.random(T) > 0.2
    mask[:3] = True
    np.testing.assert_allclose(M.accelerations(k, mask), naive_accelerations(k, mask), rtol=1e-12)


def test_jitter_hand_computed():
    fps = 30.0
    t = np.arange(10)
    gt = np.zeros((10, 21, 3))
    gt[:, :, 0] = 0.5 * 0.002 * t[:, None] ** 2  # constant acceleration 2 mm / frame^2 along x
    est = gt.copy()
    est[5, :, 1] += 0.001  # a 1 mm blip at frame 5: |a| = 2, 1, 2 mm/frame^2 extra... in y at frames 4, 5, 6
    j = M.jitter(est, gt, np.ones(10, bool), fps)
    assert j.n == 8
    assert j.gt == pytest.approx(0.002)
    extra = [np.hypot(0.002, 0.001), np.hypot(0.002, 0.002), np.hypot(0.002, 0.001)]
    assert j.est == pytest.approx((5 * 0.002 + sum(extra)) / 8)
    d = j.as_dict()
    assert d["gt_m_per_s2"] == pytest.approx(0.002 * fps ** 2) and d["ratio"] == pytest.approx(j.est / 0.002)
    self_j = M.jitter(gt, gt, np.ones(10, bool), fps)
    assert self_j.ratio == 1.0
    assert math.isnan(M.jitter(gt[:2], gt[:2], np.ones(2, bool), fps).ratio)


def test_contact_prf_matches_naive_and_edge_cases():
    rng = np.random.default_rng(0)
    gt = rng.random(200) > 0.5
    est = np.where(rng.random(200) > 0.8, ~gt, gt)
    r = M.contact_prf(est, gt)
    p, rec, f1 = naive_prf(est, gt)
    assert (r["precision"], r["recall"], r["f1"]) == pytest.approx((p, rec, f1))
    assert r["tp"] + r["fp"] + r["fn"] + r["tn"] == 200
    assert M.contact_prf(gt, gt)["f1"] == 1.0
    none = np.zeros(5, bool)
    assert M.contact_prf(none, none)["f1"] == 1.0  # no contact, none predicted: nothing wrong
    assert M.contact_prf(~none, none)["f1"] == 0.0
    assert M.contact_prf(none, ~none)["f1"] == 0.0


def test_object_frame_and_penetration_depth():
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(1)
    T = np.tile(np.eye(4), (4, 1, 1))
    T[:, :3, :3] = Rotation.random(4, random_state=2).as_matrix()
    T[:, :3, 3] = rng.normal(size=(4, 3))
    p_obj = rng.normal(size=(4, 6, 3))
    p_cam = np.einsum("tij,tnj->tni", T[:, :3, :3], p_obj) + T[:, None, :3, 3]
    np.testing.assert_allclose(M.to_object_frame(p_cam, T), p_obj, atol=1e-12)
    sdf = np.array([[0.01, 0.002, 0.005], [0.003, -0.0015, -0.004], [np.nan, 0.1, 0.1]])
    np.testing.assert_allclose(M.penetration_depth(sdf), [0.0, 0.004, np.nan])


@pytest.fixture(scope="module")
def sphere_grid():
    import trimesh
    from inscene.kernels import sdf_grid

    obj = trimesh.creation.icosphere(subdivisions=4, radius=0.03)
    return obj, sdf_grid(obj, resolution=96, cache=False)


def test_signed_distances_of_a_sphere(sphere_grid):
    obj, grid = sphere_grid
    pts = np.array([[[0.0, 0.0, 0.0], [0.02, 0.0, 0.0], [0.0, 0.035, 0.0], [0.0, 0.0, -0.1]]])
    import trimesh

    d = M.signed_distances(grid, pts)
    exact = -trimesh.proximity.signed_distance(obj, pts[0])  # trimesh: positive inside
    np.testing.assert_allclose(d[0, 1:], exact[1:], atol=2e-4)
    assert abs(d[0, 0] - exact[0]) < 1e-3  # the centre: the trilinear grid rounds the distance's peak
    assert np.isnan(M.signed_distances(grid, np.full((1, 2, 3), np.nan))).all()


def lens_volume(r1: float, r2: float, d: float) -> float:
    """Intersection volume of two balls of radii r1, r2 whose centres are d apart."""
    return math.pi * (r1 + r2 - d) ** 2 * (d * d + 2 * d * (r1 + r2) - 3 * (r1 - r2) ** 2) / (12 * d)


def test_penetration_volume_of_two_spheres(sphere_grid):
    import trimesh

    obj, grid = sphere_grid
    hand = trimesh.creation.icosphere(subdivisions=4, radius=0.025)
    for d in (0.04, 0.03):
        v = hand.vertices + [d, 0.0, 0.0]
        # reference: the lens of the two polyhedra (icospheres are slightly smaller than their balls)
        r_obj, r_hand = (3 * obj.volume / (4 * math.pi)) ** (1 / 3), (3 * hand.volume / (4 * math.pi)) ** (1 / 3)
        ref = lens_volume(r_obj, r_hand, d)
        got = M.penetration_volume(v, hand.faces, grid, spacing=0.001)
        assert got == pytest.approx(ref, rel=0.06), (d, got * 1e6, ref * 1e6)
    far = hand.vertices + [0.2, 0.0, 0.0]
    assert M.penetration_volume(far, hand.faces, grid) == 0.0
    assert math.isnan(M.penetration_volume(np.full_like(far, np.nan), hand.faces, grid))


def test_penetration_volume_of_two_boxes():
    import trimesh
    from inscene.kernels import sdf_grid

    obj = trimesh.creation.box(extents=(0.06, 0.06, 0.10))
    grid = sdf_grid(obj, resolution=96, cache=False)
    hand = trimesh.creation.box(extents=(0.04, 0.04, 0.04))
    v = hand.vertices + [0.04, 0.01, 0.0]  # overlap along x: [0.02, 0.03] -> 1 x 4 x 4 cm (y [-0.01, 0.03] inside)
    got = M.penetration_volume(v, hand.faces, grid, spacing=0.001)
    assert got == pytest.approx(0.01 * 0.04 * 0.04, rel=0.06)
    inside = hand.vertices * 0.5  # a 2 cm cube wholly inside
    assert M.penetration_volume(inside, hand.faces, grid, spacing=0.001) == pytest.approx(0.02 ** 3, rel=0.06)


def test_summary_and_pooling():
    s = M.summary_stats(np.array([0.001, 0.003, np.nan, 0.002]))
    assert s == {"mean": pytest.approx(2.0), "median": pytest.approx(2.0), "p90": pytest.approx(2.8),
                 "max": pytest.approx(3.0), "n": 3}
    assert M.summary_stats(np.array([np.nan]))["n"] == 0
    a, b = M.summary_stats(np.array([0.001, 0.003])), M.summary_stats(np.array([0.006]))
    p = M.pool_means([a, b, M.summary_stats(np.empty(0))])
    assert p["mean"] == pytest.approx(10 / 3) and p["n"] == 3 and p["max"] == pytest.approx(6.0)
    assert M.pool_means([])["n"] == 0
