"""Backward grasp completion on a synthetic approach built with the hand model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from inscene.engine.grasp.completion import (
    CompletionConfig,
    complete_approach,
    complete_between,
    complete_retreat,
)
from inscene.engine.grasp.prior import MinimumJerkPrior, min_jerk
from inscene.engine.window.types import WindowHand
from scipy.spatial.transform import Rotation

K = np.array([[600.0, 0.0, 320.0], [0.0, 600.0, 240.0], [0.0, 0.0, 1.0]])


def synthetic_reach(model, n: int, fps: float = 30.0, seed: int = 0, bias: float = 0.08, noise_px: float = 1.0,
                    t0: float = 0.0, start=(-0.15, 0.08, 0.75), end=(0.05, 0.02, 0.55), closing: bool = True,
                    fixed_last: bool = True):
    """A reach of ``n`` frames ending at ``end``: truth and what stage 1 would have made of it.

    The wrist follows a minimum-jerk path, the hand turns on the same profile and the
    fingers close over the last 70 %. Stage 1's estimates carry a time-correlated depth
    error (the hand scaled about the camera centre: same projection, other size and depth),
    zero at the last frame when ``fixed_last`` (the optimized contact frame).

    Returns (times (n,), hands [WindowHand] (n), true keypoints (n, 21, 3), true wrists (n, 3)).
    """
    rng = np.random.default_rng(seed)
    P = model.num_pose_joints
    times = t0 + np.arange(n) / fps
    s = min_jerk(np.linspace(0.0, 1.0, n))
    p0, p1 = np.asarray(start, float), np.asarray(end, float)
    wrist = p0 + s[:, None] * (p1 - p0)
    R0, R1 = Rotation.from_rotvec([0.3, -0.5, 0.2]), Rotation.from_rotvec([1.0, 0.4, -0.3])
    go = (R0 * Rotation.from_rotvec(s[:, None] * (R0.inv() * R1).as_rotvec())).as_rotvec()
    grasp = np.zeros((P, 3))
    grasp[:, 0] = 0.5
    c = min_jerk((np.linspace(0.0, 1.0, n) - 0.3) / 0.7) if closing else np.zeros(n)
    hp = c[:, None, None] * grasp
    betas = np.array([0.05, 0.0])[: model.num_betas]
    e = np.zeros(n)
    for i in range(n):
        e[i] = (0.9 * e[i - 1] if i else 0.0) + rng.normal(0.0, bias * np.sqrt(1 - 0.81))
    e += 0.5 * bias
    if fixed_last:
        e[-1] = 0.0
    f = np.exp(e)
    b1 = np.tile(betas, (n, 1))
    b1[:, 0] += np.log(f)
    dt = model.dtype
    with torch.no_grad():
        kp0 = model(torch.tensor(go, dtype=dt), torch.tensor(hp, dtype=dt), torch.tensor(betas, dtype=dt).expand(n, -1),
                    torch.zeros(n, 3, dtype=dt), with_vertices=False).keypoints.double().numpy()
        kp1 = model(torch.tensor(go, dtype=dt), torch.tensor(hp, dtype=dt), torch.tensor(b1, dtype=dt),
                    torch.zeros(n, 3, dtype=dt), with_vertices=False).keypoints.double().numpy()
    kp = kp0 + (wrist - kp0[:, 0])[:, None]
    t1 = f[:, None] * wrist - kp1[:, 0]
    kp1 = kp1 + t1[:, None]
    uv = kp @ K.T
    uv = uv[..., :2] / uv[..., 2:] + rng.normal(0.0, noise_px, (n, 21, 2))
    hands = [WindowHand("right", go[i].astype(np.float32), hp[i].astype(np.float32), b1[i].astype(np.float32),
                        t1[i].astype(np.float32), kp1[i].astype(np.float32), uv[i].astype(np.float32),
                        np.ones(21, np.float32), False) for i in range(n)]
    return times, hands, kp, wrist


def _errors(kps: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(mean root position error, mean root-relative joint error), metres."""
    mrpe = float(np.linalg.norm(kps[:, 0] - truth[:, 0], axis=-1).mean())
    rel = lambda k: k - k[:, :1]
    return mrpe, float(np.linalg.norm(rel(kps) - rel(truth), axis=-1).mean())


@pytest.fixture(scope="module")
def hand(anny_right32):
    torch.set_num_threads(1)
    return anny_right32


@pytest.mark.parametrize("seed", [0, 1])
def test_completion_fixes_depth_and_keeps_the_onset_continuous(hand, seed):
    times, hands, kp, _ = synthetic_reach(hand, 31, seed=seed)
    frames, end = hands[:-1], hands[-1]
    revised = complete_approach(hand, K, frames, end, times, MinimumJerkPrior())
    assert len(revised) == 30
    before = _errors(np.stack([h.keypoints for h in frames]), kp[:-1])
    after = _errors(np.stack([r.keypoints for r in revised]), kp[:-1])
    assert after[0] < 0.4 * before[0], (before, after)  # the bar: >= 40 % lower MRPE
    assert after[1] <= before[1] + 1e-3  # root-relative joints not worse
    np.testing.assert_allclose(revised[0].betas, end.betas)  # the contact frame's shape
    # no jump at the onset: joint acceleration at the boundary vs the sequence's median
    seq = np.concatenate([np.stack([r.keypoints for r in revised]), end.keypoints[None]])
    acc = np.linalg.norm(np.diff(seq, 2, axis=0), axis=-1).mean(-1)
    assert acc[-1] <= 2.0 * np.median(acc) + 1e-4, (acc[-1], np.median(acc))


def test_completion_tolerates_missing_and_outlying_keypoints(hand):
    times, hands, kp, _ = synthetic_reach(hand, 25, seed=3)
    rng = np.random.default_rng(3)
    for h in hands[:-1]:
        bad = rng.choice(21, 3, replace=False)
        h.keypoints2d[bad[0]] = np.nan
        h.confidence[bad[0]] = 0.0
        h.keypoints2d[bad[1:]] += 80.0  # outliers
    revised = complete_approach(hand, K, hands[:-1], hands[-1], times, MinimumJerkPrior())
    before = _errors(np.stack([h.keypoints for h in hands[:-1]]), kp[:-1])
    after = _errors(np.stack([r.keypoints for r in revised]), kp[:-1])
    assert all(np.isfinite(r.keypoints).all() for r in revised)
    assert after[0] < 0.5 * before[0], (before, after)


def test_retreat_and_between_variants(hand):
    # retreat: the reach played backwards, the first frame is the last contact frame
    times, hands, kp, _ = synthetic_reach(hand, 21, seed=4)
    back = hands[::-1]
    rt = times[-1] + (times[-1] - times[::-1])  # increasing times after the contact frame
    revised = complete_retreat(hand, K, back[0], back[1:], rt, MinimumJerkPrior())
    before = _errors(np.stack([h.keypoints for h in back[1:]]), kp[::-1][1:])
    after = _errors(np.stack([r.keypoints for r in revised]), kp[::-1][1:])
    assert after[0] < 0.5 * before[0], (before, after)
    # between: both ends known (the first frame stands in for a release's last contact frame)
    times, hands, kp, _ = synthetic_reach(hand, 21, seed=5)
    start = hands[0]
    start.transl[:] = start.transl / np.exp(0.04)  # make the start frame exact enough
    revised = complete_between(hand, K, hands[0], hands[1:-1], hands[-1], times, MinimumJerkPrior())
    assert len(revised) == 19
    after = _errors(np.stack([r.keypoints for r in revised]), kp[1:-1])
    before = _errors(np.stack([h.keypoints for h in hands[1:-1]]), kp[1:-1])
    assert after[0] < 0.5 * before[0], (before, after)


def test_penetration_is_pushed_out_near_the_grasp(hand):
    from inscene.kernels import sdf_grid

    times, hands, kp, _ = synthetic_reach(hand, 16, seed=6, bias=0.0, noise_px=0.0)
    # a box behind the last frames' hand: the plain solve ends inside it, the refinement must not
    centre = kp[-2].mean(0) + np.array([0.0, 0.0, 0.055])
    import trimesh

    box = trimesh.creation.box(extents=(0.06, 0.06, 0.06))
    grid = sdf_grid((np.asarray(box.vertices), np.asarray(box.faces)), resolution=48, cache=False)
    T_cam_obj = np.eye(4)
    T_cam_obj[:3, 3] = centre
    cfg = CompletionConfig(penetration_s=0.2)
    plain = complete_approach(hand, K, hands[:-1], hands[-1], times, MinimumJerkPrior(), config=cfg)
    pushed = complete_approach(hand, K, hands[:-1], hands[-1], times, MinimumJerkPrior(), grid, T_cam_obj, cfg)

    def deepest(r):
        with torch.no_grad():
            v = hand(*(torch.as_tensor(x[None]) for x in (r.global_orient, r.hand_pose, r.betas, r.transl))).vertices
        d, _ = grid.lookup(v[0].double().numpy() - centre)
        return max(0.0, -float(d.min()))

    near = [i for i in range(15) if times[-1] - times[i] <= 0.2]
    assert any(deepest(plain[i]) > 0.005 for i in near)
    for i in near:
        assert deepest(pushed[i]) < 0.5 * deepest(plain[i]) + 1e-3
    for i in range(15):
        if i not in near:
            np.testing.assert_allclose(pushed[i].transl, plain[i].transl, atol=1e-6)


def test_empty_and_bad_times(hand):
    times, hands, _, _ = synthetic_reach(hand, 5, seed=0)
    assert complete_approach(hand, K, [], hands[-1], times[-1:], MinimumJerkPrior()) == []
    with pytest.raises(ValueError):
        complete_approach(hand, K, hands[:-1], hands[-1], times[:-1], MinimumJerkPrior())


def test_trajectory_normal_equations_equal_autograd(anny_right):
    """The banded system of the trajectory solve is J^T J, J^T r and r.r of the stacked residuals (autograd J)."""
    from inscene.engine.grasp.completion import _Solver, state_of

    hand = anny_right  # float64: exact comparison
    times, hands, _, _ = synthetic_reach(hand, 9, seed=7)
    times = times + np.r_[np.zeros(5), 0.02, 0.02, 0.05, 0.05]  # uneven steps (a dropped frame)
    frames, end = hands[:6], hands[6]
    neighbours = [(times[7], hands[7]), (times[8], hands[8])]
    cfg = CompletionConfig()
    solver = _Solver(hand, K, frames, torch.as_tensor(end.betas, dtype=hand.dtype), cfg)
    solver.set_trajectory(times[:6], [(times[6], end), *neighbours])
    assert solver.groups is not None and len(solver.groups) == 6  # 4 among the frames, 2 reaching the fixed ones
    x = solver.initial(frames)
    x = x + 0.01 * torch.as_tensor(np.random.default_rng(0).standard_normal(x.shape))
    targets = MinimumJerkPrior().targets(times[:6], times[6], state_of(end), solver.states(x))
    tg = solver.target_tensors(targets, hand.dtype)
    sw = torch.as_tensor(np.random.default_rng(1).uniform(0.5, 1.0, (6, 21)))

    def residuals(flat: torch.Tensor) -> torch.Tensor:
        xx = flat.reshape(x.shape)
        e2d, other, kp = solver.residuals(xx, tg)
        smooth, _ = solver.smoothness(kp)
        return torch.cat([(e2d * sw[..., None] / cfg.sigma_px).reshape(-1), other.reshape(-1), smooth.reshape(-1)])

    r = residuals(x.reshape(-1))
    J = torch.autograd.functional.jacobian(residuals, x.reshape(-1))
    system, cost = solver.trajectory_system(x, tg, sw)
    H, g = system.to_dense()
    n = x.numel()
    torch.testing.assert_close(H[:n, :n], J.T @ J, rtol=1e-6, atol=1e-6 * float((J.T @ J).abs().max()))
    torch.testing.assert_close(g[:n], J.T @ r, rtol=1e-6, atol=1e-6 * float((J.T @ r).abs().max()))
    assert cost == pytest.approx(float(r @ r), rel=1e-9)


def test_revised_path_continues_into_the_contact_frames(hand):
    """Fixed stage-1 frames after the onset: the revised approach runs into them without a kink, and a
    trajectory solve is smoother than frames solved one by one."""
    times, hands, kp, _ = synthetic_reach(hand, 34, seed=8, noise_px=2.0)
    frames, end, after = hands[:31], hands[31], [(times[32], hands[32]), (times[33], hands[33])]
    for i in range(31, 34):  # the contact frames as stage 1 decided them (exact here)
        hands[i].keypoints[:] = kp[i]
        hands[i].betas[0] = 0.05  # synthetic_reach's true size
    seq = lambda rv: np.concatenate([np.stack([r.keypoints for r in rv]), np.stack([h.keypoints for h in hands[31:]])])
    acc = lambda k: np.linalg.norm(np.diff(k, 2, axis=0), axis=-1).mean(-1)
    smooth = complete_approach(hand, K, frames, end, times[:32], MinimumJerkPrior(), neighbours=after)
    single = complete_approach(hand, K, frames, end, times[:32], MinimumJerkPrior(),
                               config=CompletionConfig(sigma_accel=0.0))
    a_s, a_1 = acc(seq(smooth)), acc(seq(single))
    assert np.median(a_s) < 0.7 * np.median(a_1), (np.median(a_s), np.median(a_1))  # less jitter
    junction = a_s[29:32].max()  # groups through the last revised frame, the onset and the first neighbour
    assert junction <= 2.0 * np.median(a_s), (a_s[27:], np.median(a_s))
    mrpe_s = _errors(np.stack([r.keypoints for r in smooth]), kp[:31])[0]
    mrpe_1 = _errors(np.stack([r.keypoints for r in single]), kp[:31])[0]
    assert mrpe_s <= mrpe_1 * 1.1, (mrpe_s, mrpe_1)
