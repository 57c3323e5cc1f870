"""Region-tracking kernels against naive twins; the Newton system against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from inscene.kernels.regions import (Distributions, Lines, accumulate_histograms, line_agreement,
                                     line_distributions, newton_system, project_lines, smoothed_step)
from inscene.models.objects.tracker import pose_increment

# ----------------------------------------------------------------------------------------- naive twins


def naive_pf(image, lut, prob, occ, x, y):
    """Pixel foreground posterior, or None when the pixel carries no information."""
    h, w = image.shape[:2]
    if not (0 <= x < w and 0 <= y < h) or (occ is not None and occ[y, x]):
        return None
    if prob is not None:
        p = float(prob[y, x])
    else:
        bins = round(len(lut) ** (1 / 3))
        q = 256 // bins
        r, g, b = (int(v) // q for v in image[y, x])
        p = float(lut[(r * bins + g) * bins + b])
    return min(max(p, 1e-3), 1 - 1e-3)


def naive_distributions(image, centers, normals, scale, lut=None, prob=None, occ=None, nf=8, nd=12, amp=0.43,
                        slope=0.5, min_var=0.0, active=None):
    """Contour posteriors by log-likelihoods over explicitly listed pixels (pixel distances along the normal)."""
    hf, _ = smoothed_step(nf, amp, slope)
    n_seg = nf + nd - 1
    mu, var, valid = np.zeros(len(centers)), np.zeros(len(centers)), np.zeros(len(centers), bool)
    for i, (c, n) in enumerate(zip(centers, normals, strict=True)):
        if active is not None and not active[i]:
            continue
        ell = 1.0 / max(abs(n[0]), abs(n[1]))
        axis = 0 if abs(n[0]) >= abs(n[1]) else 1
        # the first sample sits on the pixel centre nearest to where it would be unsnapped
        raw_first = c[axis] + (0.5 - n_seg * scale / 2) * ell * n[axis]
        delta = (np.floor(raw_first + 0.5) - raw_first) / (ell * n[axis])
        c = c + delta * ell * n
        steps = np.arange(n_seg * scale) + 0.5 - n_seg * scale / 2
        seg_logf, seg_logb = np.zeros(n_seg), np.zeros(n_seg)
        unknown, centre_unknown = 0, False
        for k, t in enumerate(steps):
            pos = c + t * ell * n  # pixel distance t * ell along the unit normal
            x, y = int(np.floor(pos[0] + 0.5)), int(np.floor(pos[1] + 0.5))
            p = naive_pf(image, lut, prob, occ, x, y)
            if p is None:
                unknown += 1
                centre_unknown |= abs(t) <= 1.0
                continue
            seg_logf[k // scale] += np.log(p)
            seg_logb[k // scale] += np.log(1 - p)
        if centre_unknown or 2 * unknown > len(steps):
            continue
        Pf = 1.0 / (1.0 + np.exp(seg_logb - seg_logf))
        logd = np.array([sum(np.log(hf[k] * Pf[m + k] + (1 - hf[k]) * (1 - Pf[m + k])) for k in range(nf))
                         for m in range(nd)])
        d = np.exp(logd - logd.max())
        d /= d.sum()
        pos = np.arange(nd) - (nd - 1) / 2
        m1 = (d * pos).sum()
        v = max((d * (pos - m1) ** 2).sum(), min_var)
        mu[i], var[i], valid[i] = (m1 * scale + delta) * ell, v * (scale * ell) ** 2, True
    return mu, var, valid


def naive_agreement(image, centers, normals, in_len, out_len, lut=None, prob=None, occ=None):
    a, ok = np.zeros(len(centers)), np.zeros(len(centers), bool)
    for i, (c, n) in enumerate(zip(centers, normals, strict=True)):
        means = []
        for sign, length, fg in ((-1, in_len[i], True), (1, out_len[i], False)):
            npx = max(1, int(length))
            vals = []
            for r in range(npx):
                pos = c + sign * (r + 0.5) * n
                p = naive_pf(image, lut, prob, occ, int(np.floor(pos[0] + 0.5)), int(np.floor(pos[1] + 0.5)))
                if p is not None:
                    vals.append(p if fg else 1 - p)
            if 2 * len(vals) < npx:
                break
            means.append(np.mean(vals))
        if len(means) == 2:
            a[i], ok[i] = sum(means) - 1, True
    return a, ok


def scene(seed: int, h: int = 60, w: int = 80, n: int = 40):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    centers = np.stack([rng.uniform(-5, w + 5, n), rng.uniform(-5, h + 5, n)], 1)
    ang = rng.uniform(0, 2 * np.pi, n)
    ang[:4] = [0, np.pi / 2, np.pi / 4, np.pi]  # axis-aligned and diagonal lines
    normals = np.stack([np.cos(ang), np.sin(ang)], 1)
    lut = rng.uniform(0, 1, 16 ** 3).astype(np.float32)
    prob = rng.uniform(0, 1, (h, w)).astype(np.float32)
    occ = rng.uniform(0, 1, (h, w)) < 0.15
    return image, Lines(centers, normals, np.ones(n)), lut, prob, occ


# ----------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("scale", [1, 2, 3])
@pytest.mark.parametrize("mode", ["lut", "prob", "lut+occlusion"])
@pytest.mark.parametrize("parallel", [False, True])
def test_line_distributions_equal_naive(scale, mode, parallel):
    image, lines, lut, prob, occ = scene(scale)
    kw = {"prob": prob} if mode == "prob" else {"lut": lut}
    o = occ if "occlusion" in mode else None
    active = np.ones(len(lines.centers), bool)
    active[5] = False
    d = line_distributions(image, lines, scale, occlusion=o, min_var=0.1, active=active, n_function=6,
                           n_distribution=8, parallel=parallel, **kw)
    mu, var, valid = naive_distributions(image, lines.centers, lines.normals, scale, occ=o, nf=6, nd=8,
                                         min_var=0.1, active=active, **kw)
    np.testing.assert_array_equal(d.valid, valid)
    assert valid.sum() >= 10 and not d.valid[5]
    np.testing.assert_allclose(d.mu[valid], mu[valid], atol=1e-9)
    np.testing.assert_allclose(d.var[valid], var[valid], rtol=1e-9)


def test_distribution_finds_a_step_edge():
    """A vertical edge (foreground left of x = 30.5): lines through it see the contour where it is."""
    image = np.zeros((40, 64, 3), np.uint8)
    image[:, :31] = 200
    lut = np.zeros(16 ** 3, np.float32)
    lut[(12 * 16 + 12) * 16 + 12] = 1.0
    centers = np.array([[27.0, 20.0], [33.5, 10.0], [30.5, 30.0]])
    lines = Lines(centers, np.array([[1.0, 0.0]] * 3), np.ones(3))
    d = line_distributions(image, lines, 1, lut=lut, amplitude=0.49, slope=0.1)
    np.testing.assert_allclose(d.mu, 30.5 - centers[:, 0], atol=0.1)
    assert (d.var < 0.1).all()


@pytest.mark.parametrize("parallel", [False, True])
def test_agreement_and_histograms_equal_naive(parallel):
    image, lines, lut, prob, occ = scene(7)
    n = len(lines.centers)
    rng = np.random.default_rng(3)
    in_len, out_len = rng.uniform(0, 9, n), rng.uniform(0, 9, n)
    for kw, o in (({"lut": lut}, None), ({"prob": prob}, occ)):
        a, ok = line_agreement(image, lines, in_len, out_len, occlusion=o, parallel=parallel, **kw)
        a2, ok2 = naive_agreement(image, lines.centers, lines.normals, in_len, out_len, occ=o, **kw)
        np.testing.assert_array_equal(ok, ok2)
        np.testing.assert_allclose(a[ok], a2[ok], atol=1e-12)
    hf, hb = np.zeros(16 ** 3), np.zeros(16 ** 3)
    valid = rng.uniform(size=n) < 0.8
    accumulate_histograms(image, lines, in_len, out_len, valid, hf, hb, occlusion=occ, skip=0.5)
    rf, rb = np.zeros(16 ** 3), np.zeros(16 ** 3)
    for i in np.nonzero(valid)[0]:
        for sign, length, hist in ((-1, in_len[i], rf), (1, out_len[i], rb)):
            r = 0.5
            while r < length:
                pos = lines.centers[i] + sign * r * lines.normals[i]
                x, y = int(np.floor(pos[0] + 0.5)), int(np.floor(pos[1] + 0.5))
                r += 1
                if 0 <= x < 80 and 0 <= y < 60 and not occ[y, x]:
                    c = image[y, x] // 16
                    hist[(int(c[0]) * 16 + int(c[1])) * 16 + int(c[2])] += 1
    np.testing.assert_array_equal(hf, rf)
    np.testing.assert_array_equal(hb, rb)


def random_pose(rng) -> np.ndarray:
    T = pose_increment(np.concatenate([rng.normal(0, 0.5, 3), [0, 0, 0]]))
    T[:3, 3] = [rng.normal(0, 0.03), rng.normal(0, 0.03), 0.4]
    return T


def project(K, T, p):
    x = p @ T[:3, :3].T + T[:3, 3]
    return np.stack([(K[0, 0] * x[:, 0] + K[0, 1] * x[:, 1]) / x[:, 2] + K[0, 2],
                     K[1, 1] * x[:, 1] / x[:, 2] + K[1, 2]], 1)


def test_project_lines_matches_finite_differences():
    rng = np.random.default_rng(0)
    K = np.array([[600.0, 2.0, 320.0], [0, 610.0, 240.0], [0, 0, 1]])
    T = random_pose(rng)
    p = rng.normal(0, 0.04, (30, 3))
    n = rng.normal(size=(30, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    lines = project_lines(p, n, T, K)
    np.testing.assert_allclose(lines.centers, project(K, T, p), atol=1e-9)
    eps = 1e-6
    d = project(K, T, p + eps * n) - project(K, T, p - eps * n)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    np.testing.assert_allclose(lines.normals, d, atol=1e-6)
    np.testing.assert_allclose(lines.depth, (p @ T[:3, :3].T + T[:3, 3])[:, 2])


def test_newton_system_matches_finite_differences():
    """g and H = J^T W J of 0.5 sum w r^2 against central differences of the residuals (float64)."""
    rng = np.random.default_rng(1)
    K = np.array([[600.0, 0.0, 320.0], [0, 600.0, 240.0], [0, 0, 1]])
    T = random_pose(rng)
    p = rng.normal(0, 0.04, (25, 3))
    n2 = rng.normal(size=(25, 2))
    n2 /= np.linalg.norm(n2, axis=1, keepdims=True)
    lines = Lines(project(K, T, p) + rng.normal(0, 3, (25, 2)), n2, np.ones(25))
    dist = Distributions(rng.normal(0, 2, 25), rng.uniform(0.5, 4, 25), rng.uniform(size=25) < 0.85)
    wts = rng.uniform(0.5, 2, 25)

    def residuals(theta):
        uv = project(K, T @ pose_increment(theta), p)
        return np.einsum("ij,ij->i", n2, uv - lines.centers) - dist.mu

    H, g, cost = newton_system(p, lines, dist, T, K, weights=wts)
    w = np.where(dist.valid, wts / dist.var, 0.0)
    r0 = residuals(np.zeros(6))
    assert cost == pytest.approx(0.5 * (w * r0 ** 2).sum(), rel=1e-12)
    eps = 1e-6
    J = np.stack([(residuals(eps * e) - residuals(-eps * e)) / (2 * eps) for e in np.eye(6)], 1)
    np.testing.assert_allclose(g, J.T @ (w * r0), rtol=1e-5, atol=1e-6 * np.abs(g).max())
    np.testing.assert_allclose(H, J.T @ (w[:, None] * J), rtol=1e-5, atol=1e-6 * np.abs(H).max())


def test_kernel_inputs_are_checked():
    image, lines, lut, prob, _ = scene(0)
    with pytest.raises(ValueError, match="exactly one"):
        line_distributions(image, lines, 1, lut=lut, prob=prob)
    with pytest.raises(ValueError, match="RGB uint8"):
        line_distributions(image.astype(np.float32), lines, 1, lut=lut)
    with pytest.raises(ValueError, match="occlusion"):
        line_distributions(image, lines, 1, lut=lut, occlusion=np.zeros((3, 3), bool))
    with pytest.raises(ValueError, match="lut"):
        line_distributions(image, lines, 1, lut=np.zeros(100, np.float32))
