"""The minimum-jerk motion prior of grasp completion (engine/grasp/prior.py)."""

from __future__ import annotations

import numpy as np
import pytest
from inscene.engine.grasp.prior import (
    HandState,
    MinimumJerkPrior,
    fit_free_end,
    make_prior,
    min_jerk,
    min_jerk_derivatives,
)
from scipy.spatial.transform import Rotation


def _naive_min_jerk(tau: float) -> float:
    """Flash & Hogan's closed form written as the quintic through the boundary conditions."""
    # x(0)=0, x(1)=1, x'(0)=x'(1)=0, x''(0)=x''(1)=0 -> solve for the quintic's coefficients
    A, b = [], []
    for t, d, v in [(0, 0, 0), (1, 0, 1), (0, 1, 0), (1, 1, 0), (0, 2, 0), (1, 2, 0)]:
        row = []
        for k in range(6):
            if d == 0:
                row.append(t ** k)
            elif d == 1:
                row.append(k * t ** (k - 1) if k >= 1 else 0.0)
            else:
                row.append(k * (k - 1) * t ** (k - 2) if k >= 2 else 0.0)
        A.append(row)
        b.append(v)
    c = np.linalg.solve(np.array(A, float), np.array(b, float))
    return float(sum(c[k] * tau ** k for k in range(6)))


def test_min_jerk_endpoints_rest_and_symmetry():
    tau = np.linspace(0.0, 1.0, 101)
    s = min_jerk(tau)
    assert s[0] == 0.0 and s[-1] == 1.0
    d1, d2, _ = min_jerk_derivatives(np.array([0.0, 1.0]))
    np.testing.assert_allclose(d1, 0.0, atol=1e-12)
    np.testing.assert_allclose(d2, 0.0, atol=1e-12)
    np.testing.assert_allclose(s + s[::-1], 1.0, atol=1e-12)  # point-symmetric about mid-movement
    assert np.all(np.diff(s) >= 0)
    v, _, _ = min_jerk_derivatives(tau)
    assert abs(tau[np.argmax(v)] - 0.5) < 1e-9 and abs(v.max() - 1.875) < 1e-9  # bell-shaped speed, peak 15/8
    np.testing.assert_allclose(s, [_naive_min_jerk(t) for t in tau], atol=1e-12)
    assert min_jerk(-0.5) == 0.0 and min_jerk(1.5) == 1.0


def test_min_jerk_derivatives_match_finite_differences():
    tau = np.linspace(0.05, 0.95, 19)
    h = 1e-5
    d1, d2, d3 = min_jerk_derivatives(tau)
    np.testing.assert_allclose(d1, (min_jerk(tau + h) - min_jerk(tau - h)) / (2 * h), atol=1e-6)
    np.testing.assert_allclose(d2, (min_jerk_derivatives(tau + h)[0] - min_jerk_derivatives(tau - h)[0]) / (2 * h),
                               atol=1e-5)
    np.testing.assert_allclose(d3, (min_jerk_derivatives(tau + h)[1] - min_jerk_derivatives(tau - h)[1]) / (2 * h),
                               atol=1e-4)


def test_fit_free_end_recovers_the_start():
    rng = np.random.default_rng(0)
    s = min_jerk(np.linspace(0, 1, 30))
    end, start = np.array([0.1, 0.0, 0.5]), np.array([-0.2, 0.1, 0.8])
    vals = end + (1 - s)[:, None] * (start - end)
    np.testing.assert_allclose(fit_free_end(vals, end, s, np.ones(30)), start, atol=1e-12)
    noisy = vals + rng.normal(0, 0.002, vals.shape)
    assert np.linalg.norm(fit_free_end(noisy, end, s, np.ones(30)) - start) < 0.005


def _states(times, t_end, start, end, R0, R1, f0, f1, prior):
    s = prior.profile(times, t_end, t_end - times[0])
    rel = (R0.inv() * R1).as_rotvec()
    tau = np.clip(1 - (t_end - times) / (t_end - times[0]), 0, 1)
    c = prior.aperture(tau)
    out = []
    for k in range(len(times)):
        R = R0 * Rotation.from_rotvec(s[k] * rel)
        out.append(HandState(start + s[k] * (end - start), R.as_rotvec(), f0 + c[k] * (f1 - f0)))
    return out


def test_minimum_jerk_prior_reproduces_a_minimum_jerk_reach():
    prior = MinimumJerkPrior(durations=(1.0,))
    times = np.arange(30) / 30.0
    t_end = 1.0
    start, end = np.array([-0.2, 0.1, 0.8]), np.array([0.05, 0.0, 0.5])
    R0, R1 = Rotation.from_rotvec([0.2, -0.4, 0.1]), Rotation.from_rotvec([0.9, 0.3, -0.2])
    f0, f1 = np.zeros((19, 3)), np.full((19, 3), 0.3)
    cur = _states(times, t_end, start, end, R0, R1, f0, f1, prior)
    fixed = HandState(end, R1.as_rotvec(), f1)
    tg = prior.targets(times, t_end, fixed, cur)
    np.testing.assert_allclose(tg.wrist, np.stack([c.wrist for c in cur]), atol=1e-9)
    np.testing.assert_allclose(tg.fingers, np.stack([c.fingers for c in cur]), atol=1e-9)
    ang = (Rotation.from_rotvec(tg.orient).inv() * Rotation.from_rotvec(np.stack([c.orient for c in cur]))).magnitude()
    assert ang.max() < 1e-6
    np.testing.assert_allclose(tg.free.wrist, start, atol=1e-9)
    # uncertainty shrinks towards the fixed end
    assert np.all(np.diff(tg.sigma_wrist) <= 1e-12) and tg.sigma_wrist[-1] < tg.sigma_wrist[0]


def test_prior_picks_the_movement_duration_and_holds_before_it():
    prior = MinimumJerkPrior()
    times = np.arange(60) / 30.0  # 2 s of buffer, the reach takes the last 1 s
    t_end = 2.0
    start, end = np.array([-0.2, 0.1, 0.8]), np.array([0.05, 0.0, 0.5])
    s = min_jerk(1 - (t_end - times) / 1.0)
    cur = [HandState(start + si * (end - start), np.zeros(3), np.zeros((19, 3))) for si in s]
    tg = prior.targets(times, t_end, HandState(end, np.zeros(3), np.zeros((19, 3))), cur)
    np.testing.assert_allclose(tg.wrist, np.stack([c.wrist for c in cur]), atol=1e-9)
    assert np.all(tg.progress[:29] == 0.0)


def test_retreat_runs_forward_from_the_fixed_start():
    prior = MinimumJerkPrior(durations=(1.0,))
    times = 1.0 + np.arange(1, 31) / 30.0  # after the release at t = 1
    fixed = HandState(np.array([0.0, 0.0, 0.5]), np.zeros(3), np.zeros((19, 3)))
    goal = np.array([0.2, -0.1, 0.7])
    s = min_jerk((times - 1.0) / 1.0)
    cur = [HandState(fixed.wrist + si * (goal - fixed.wrist), np.zeros(3), np.zeros((19, 3))) for si in s]
    tg = prior.targets(times, 1.0, fixed, cur)
    np.testing.assert_allclose(tg.wrist, np.stack([c.wrist for c in cur]), atol=1e-9)
    np.testing.assert_allclose(tg.free.wrist, goal, atol=1e-9)


def test_given_free_end_is_used():
    prior = MinimumJerkPrior()
    times = np.arange(10) / 30.0
    fixed = HandState(np.zeros(3), np.zeros(3), np.zeros((19, 3)))
    free = HandState(np.array([0.1, 0.0, 0.0]), np.array([0.0, 0.0, 0.5]), np.ones((19, 3)))
    cur = [fixed] * 10
    tg = prior.targets(times, 10 / 30.0, fixed, cur, free=free)
    np.testing.assert_allclose(tg.free.wrist, free.wrist)
    np.testing.assert_allclose(tg.wrist[0], free.wrist)  # the first frame is the movement's start
    np.testing.assert_allclose(tg.fingers[0], free.fingers)


def test_make_prior_names():
    assert isinstance(make_prior("minimum_jerk"), MinimumJerkPrior)
    with pytest.raises(ValueError):
        make_prior("learned")
