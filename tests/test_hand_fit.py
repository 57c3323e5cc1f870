"""Per-frame fitting: known poses of the model -> keypoints projected with a known camera -> fit."""

from __future__ import annotations

import math

import pytest
import torch
from hand_fixtures import default_camera, mpjpe_mm, observe, perturb, sample_hands
from inscene.models.hands import FitConfig, fit_frames, fit_keypoints

N = 16


def _landmarks(kp: torch.Tensor) -> torch.Tensor:
    """Relative 3D keypoints as a detector gives them: camera axes, centred on the hand."""
    return kp - kp.mean(1, keepdim=True)


def test_recovers_known_poses_without_noise(anny_right32):
    model = anny_right32
    K = default_camera(model.dtype)
    truth = sample_hands(model, N, seed=0)
    uv, conf, kp = observe(model, truth, K)
    res = fit_keypoints(model, uv, conf, K, landmarks3d=_landmarks(kp))
    err = mpjpe_mm(res.keypoints, kp)
    print(f"\nno noise, 2D + relative 3D: MPJPE mean {err.mean():.2f} mm, max {err.max():.2f} mm")
    assert err.mean() <= 5.0
    assert res.reprojection_px.mean() < 1.5


def test_figures_with_two_pixel_noise(anny_right32):
    """The 2 px figures (printed); 2D-only fits keep monocular depth ambiguities, hence the loose bound."""
    model = anny_right32
    K = default_camera(model.dtype)
    truth = sample_hands(model, N, seed=1)
    uv, conf, kp = observe(model, truth, K, noise_px=2.0, seed=1)
    with3d = mpjpe_mm(fit_keypoints(model, uv, conf, K, landmarks3d=_landmarks(kp)).keypoints, kp)
    only2d = mpjpe_mm(fit_keypoints(model, uv, conf, K).keypoints, kp)
    print(f"\n2 px noise: MPJPE 2D + relative 3D mean {with3d.mean():.2f} mm; 2D only mean {only2d.mean():.2f}, "
          f"median {only2d.median():.2f} mm")
    assert with3d.mean() <= 7.0
    assert only2d.median() <= 20.0


def test_robust_to_a_few_bad_keypoints(anny_right32):
    model = anny_right32
    K = default_camera(model.dtype)
    truth = sample_hands(model, N, seed=2)
    uv, conf, kp = observe(model, truth, K, noise_px=1.0, seed=2)
    clean = mpjpe_mm(fit_keypoints(model, uv, conf, K, landmarks3d=_landmarks(kp)).keypoints, kp)
    g = torch.Generator().manual_seed(5)
    bad = torch.stack([torch.randperm(21, generator=g)[:3] for _ in range(N)])  # 3 of 21 per hand
    corrupt = uv.clone()
    shift = 60.0 + 60.0 * torch.rand(N, 3, 2, generator=g)
    corrupt[torch.arange(N)[:, None], bad] += shift * torch.sign(torch.randn(N, 3, 2, generator=g))
    res = fit_keypoints(model, corrupt, conf, K, landmarks3d=_landmarks(kp))
    robust = mpjpe_mm(res.keypoints, kp)
    plain = mpjpe_mm(fit_keypoints(model, corrupt, conf, K, landmarks3d=_landmarks(kp),
                                   config=FitConfig(robust_px=1e4, robust_start_px=1e4)).keypoints, kp)
    print(f"\n3 outliers of 60-120 px: MPJPE clean {clean.mean():.2f}, robust {robust.mean():.2f}, "
          f"non-robust {plain.mean():.2f} mm")
    assert robust.mean() <= clean.mean() + 2.0
    assert robust.mean() < plain.mean()
    weights = res.inlier_weight[torch.arange(N)[:, None], bad]
    assert weights.max() < 0.1


def test_joint_limits_keep_noisy_fits_anatomical(anny_right32):
    model = anny_right32
    K = default_camera(model.dtype)
    truth = sample_hands(model, N, seed=3)
    uv, conf, kp = observe(model, truth, K, noise_px=2.0, seed=3)
    worst = {}
    for weight in (1.0, 0.0):
        res = fit_keypoints(model, uv, conf, K, config=FitConfig(limit_weight=weight))
        worst[weight] = math.degrees(float(model.joint_limits.violation(res.params.hand_pose).max()))
    print(f"\nlargest joint-limit violation, 2D-only 2 px fits: with limits {worst[1.0]:.2f} deg, "
          f"without {worst[0.0]:.2f} deg")
    assert worst[1.0] <= 2.0
    assert worst[0.0] > worst[1.0]


def test_warm_start(anny_right32):
    model = anny_right32
    K = default_camera(model.dtype)
    truth = sample_hands(model, N, seed=4)
    uv, conf, kp = observe(model, truth, K, noise_px=1.0, seed=4)
    start = perturb(truth, seed=4)  # as the previous frame's estimate would be
    res = fit_keypoints(model, uv, conf, K, landmarks3d=_landmarks(kp), init=start)
    err = mpjpe_mm(res.keypoints, kp)
    start_err = mpjpe_mm(model.pose(start, with_vertices=False).keypoints, kp)
    cold = mpjpe_mm(fit_keypoints(model, uv, conf, K, landmarks3d=_landmarks(kp)).keypoints, kp)
    print(f"\nwarm start: MPJPE {start_err.mean():.2f} mm at the start, {err.mean():.2f} mm after "
          f"{FitConfig().warm_iterations} iterations; cold start {cold.mean():.2f} mm")
    assert err.mean() < 0.5 * start_err.mean()
    assert err.mean() < cold.mean() + 1.0
    assert res.reprojection_px.median() < 3.0


def test_frames_and_hands_in_one_call(anny_data):
    """(T, H) hands of both sides: grouped by side, same result as fitting each hand alone."""
    from inscene.models.hands.model import HandModel

    models = {side: HandModel(anny_data[side]) for side in ("right", "left")}
    K = default_camera(torch.float32)
    T = 3
    truths = [sample_hands(models["right"], T, seed=10), sample_hands(models["right"], T, seed=11).mirrored()]
    sides = ["right", "left"]
    obs = [observe(models[s], t, K, noise_px=1.0, seed=i) for i, (s, t) in enumerate(zip(sides, truths))]
    uv = torch.stack([o[0] for o in obs], dim=1)
    conf = torch.stack([o[1] for o in obs], dim=1)
    lm = torch.stack([_landmarks(o[2]) for o in obs], dim=1)
    results = fit_frames(models, uv, conf, K, sides, landmarks3d=lm)
    assert len(results) == 2
    for h, side in enumerate(sides):
        alone = fit_keypoints(models[side], uv[:, h], conf[:, h], K, landmarks3d=lm[:, h])
        torch.testing.assert_close(results[h].keypoints, alone.keypoints, rtol=0, atol=1e-5)
        assert mpjpe_mm(results[h].keypoints, obs[h][2]).mean() < 8.0
    warm = fit_frames(models, uv, conf, K, sides, landmarks3d=lm, init=[r.params for r in results])
    assert all(w.keypoints.shape == (T, 21, 3) for w in warm)


def test_fits_mano_too(mano_synthetic):
    model = mano_synthetic["left"]
    K = default_camera(model.dtype)
    truth = sample_hands(model, 8, seed=5)
    uv, conf, kp = observe(model, truth, K)
    res = fit_keypoints(model, uv, conf, K, landmarks3d=_landmarks(kp))
    assert mpjpe_mm(res.keypoints, kp).mean() <= 5.0


def test_missing_keypoints_and_empty_hands_stay_finite(anny_right32):
    model = anny_right32
    K = default_camera(model.dtype)
    truth = sample_hands(model, 3, seed=6)
    uv, conf, kp = observe(model, truth, K, noise_px=1.0, seed=6)
    conf[0] = 0.0  # nothing detected
    uv[1, 17:] = float("nan")  # the little finger is missing
    res = fit_keypoints(model, uv, conf, K, landmarks3d=_landmarks(kp))
    assert torch.isfinite(res.keypoints).all() and torch.isfinite(res.cost).all()
    assert mpjpe_mm(res.keypoints[1:], kp[1:]).max() < 10.0


def test_warmup_fits_its_made_up_hand(anny_right32):
    """The stages' warm-up (a cold then a warm fit of the mean hand 0.5 m ahead) runs the real fit: it finds
    that hand again, with and without the relative 3D landmarks."""
    from inscene.models.hands.fitting import warmup

    K = default_camera()
    for landmarks in (True, False):
        res = warmup(anny_right32, K, landmarks=landmarks)
        assert float(res.reprojection_px.max()) < 0.5
        assert abs(float(res.keypoints[0, 0, 2]) - 0.5) < 0.05


@pytest.mark.parametrize("name", ["anny_right", "mano_right", "anny_right32"])
def test_numba_warm_fit_equals_the_torch_one(name, anny_right, anny_right32, mano_synthetic):
    """The warm-started fit as the numba kernel (``kernels/handfit.py``) and as the torch solve, its twin: the same
    parameters, keypoints, weights and cost on float64 models (with and without 3D landmarks, a missing keypoint,
    an outlier); on the float32 model the torch solve rounds in float32, so the keypoints agree within 0.2 mm."""
    model = {"anny_right": anny_right, "mano_right": mano_synthetic["right"], "anny_right32": anny_right32}[name]
    K = default_camera(model.dtype)
    truth = sample_hands(model, 3, seed=7)
    uv, conf, kp = observe(model, truth, K, noise_px=2.0, seed=7)
    conf[0, 5] = 0.0
    uv[1, 8] += 40.0
    start = perturb(truth, seed=7)
    for lm in (_landmarks(kp), None):
        fast = fit_keypoints(model, uv, conf, K, landmarks3d=lm, init=start)
        slow = fit_keypoints(model, uv, conf, K, landmarks3d=lm, init=start, fast=False)
        if model.dtype == torch.float64:
            for field in ("global_orient", "hand_pose", "betas", "transl"):
                assert (getattr(fast.params, field) - getattr(slow.params, field)).abs().max() < 1e-9, field
            assert (fast.keypoints - slow.keypoints).abs().max() < 1e-10
            assert (fast.inlier_weight - slow.inlier_weight).abs().max() < 1e-8
            assert (fast.cost - slow.cost).abs().max() < 1e-6 * max(1.0, float(slow.cost.abs().max()))
        else:
            assert (fast.keypoints - slow.keypoints).abs().max() < 2e-4


@pytest.mark.parametrize("name", ["anny_right", "mano_right"])
def test_numba_cold_fit_equals_the_torch_one(name, anny_right, mano_synthetic):
    """A cold start (orientation candidates, their rigid stage, the annealed full fit of the best) with the
    kernel and with the torch solve: the same hands on float64 models."""
    model = {"anny_right": anny_right, "mano_right": mano_synthetic["right"]}[name]
    K = default_camera(model.dtype)
    truth = sample_hands(model, 2, seed=9)
    uv, conf, kp = observe(model, truth, K, noise_px=2.0, seed=9)
    for lm in (_landmarks(kp), None):
        fast = fit_keypoints(model, uv, conf, K, landmarks3d=lm)
        slow = fit_keypoints(model, uv, conf, K, landmarks3d=lm, fast=False)
        for field in ("global_orient", "hand_pose", "betas", "transl"):
            assert (getattr(fast.params, field) - getattr(slow.params, field)).abs().max() < 1e-7, field
        assert (fast.keypoints - slow.keypoints).abs().max() < 1e-8
