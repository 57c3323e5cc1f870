"""Region-tracking kernels (SRT3D family): correspondence lines, contour posteriors, the Newton system.

A *correspondence line* ``i`` passes through the projected contour point ``c_i``
(pixels, centres at integer coordinates) along the projected outward normal
``n_i`` (unit, 2D). It is walked in steps of ``v_i = n_i / max(|n_x|, |n_y|)``
(one pixel along the dominant axis, ``l_i = |v_i|`` pixels along the normal), and
cut into ``L = F + D - 1`` segments of ``s`` steps (the scale), centred on ``c_i``.

Pixel posteriors ``p_f = P(foreground | colour)`` come from a lookup table over
colour bins (``lut[(r >> q) * B^2 + (g >> q) * B + (b >> q)]``, ``B = 256 >> q``)
or from a probability image; pixels that are occluded (mask) or outside the image
carry no information (``p_f = p_b = 1/2``). A segment's posterior is the product
over its pixels, normalized: ``P_f = prod p_f / (prod p_f + prod p_b)``.

The samples are snapped to pixel centres along the dominant axis: the walk
starts ``delta_i`` steps (``|delta_i| <= 1/2``) from ``c_i``, so that the candidate
contour positions fall on pixel boundaries. The contour's position along the
line takes ``D`` discrete values ``d_m = ((m - (D - 1) / 2) s + delta_i) l_i``
pixels from ``c_i``; its posterior is
``p(d_m) ~ prod_k (h_f(k) P_f[m + k] + h_b(k) P_b[m + k])`` over the ``F``
segments of the window around ``d_m``, with the smoothed step
``h_f(x) = 1/2 - a tanh(x / (2 b))`` at segment offsets ``x = k - F/2 + 1/2``
and ``h_b = 1 - h_f``. Its mean and variance (pixels) feed a Gaussian residual
``r_i = n_i . (pi(X_i(theta)) - c_i) - mu_i`` with weight ``1 / var_i``.

Pose variation (object frame): ``X_c = R (exp([w]) X_o + tau) + t`` with
``theta = (w, tau)``; the Newton system is ``H = sum w_i J_i J_i^T``,
``g = sum w_i r_i J_i`` with ``J_i = (X_o x b_i, b_i)``, ``b_i = R^T dpi/dX^T n_i``.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange

EPS_PIXEL = 1e-3  # pixel posteriors are clamped to [EPS, 1 - EPS]
PARALLEL_LINES = 4096
"""Line counts from which the kernels use numba's threads by default (a tracked view has ~200 lines: the
threads' start-up costs more than they save there, and under load they wait for a busy core)."""


@contextmanager
def _threads(n: int, parallel: bool | None):
    """Run a (prange) kernel on numba's threads, or on the calling thread alone (numba's thread count is
    per calling thread). Compiled with ``parallel=True`` either way: numba's serial pipeline made these
    kernels ~7x slower here (numba 0.68)."""
    if (n >= PARALLEL_LINES) if parallel is None else parallel:
        yield
        return
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


@dataclass(frozen=True)
class Lines:
    """Projected correspondence lines (``L`` lines)."""

    centers: np.ndarray
    """(L, 2) float64 pixel positions of the projected contour points."""
    normals: np.ndarray
    """(L, 2) float64 unit projected outward normals."""
    depth: np.ndarray
    """(L,) float64 camera z of the contour points."""


@dataclass(frozen=True)
class Distributions:
    """Contour posteriors along lines: mean and variance in pixels along the normal."""

    mu: np.ndarray
    """(L,) float64 mean offset of the contour from the line centre, pixels."""
    var: np.ndarray
    """(L,) float64 variance, pixels^2."""
    valid: np.ndarray
    """(L,) bool the line saw the image (centre neither occluded nor outside)."""


def smoothed_step(n_function: int, amplitude: float, slope: float) -> tuple[np.ndarray, np.ndarray]:
    """``h_f``, ``h_b`` (F,) float64 at segment offsets ``k - F/2 + 1/2`` from the contour."""
    x = np.arange(n_function) - n_function / 2.0 + 0.5
    hf = 0.5 - amplitude * np.tanh(x / (2.0 * slope))
    return hf, 1.0 - hf


def _f64(a: np.ndarray, shape: tuple, name: str) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    if a.ndim != len(shape) or any(s is not None and a.shape[k] != s for k, s in enumerate(shape)):
        raise ValueError(f"regions: {name} must have shape {shape}, got {a.shape}")
    return a


def _image_inputs(image, lut, prob, occlusion):
    """Checked image / LUT / probability / occlusion arrays (empty placeholders where absent)."""
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"regions: image must be RGB uint8 (H, W, 3), got {img.dtype} {img.shape}")
    h, w = img.shape[:2]
    if (lut is None) == (prob is None):
        raise ValueError("regions: give exactly one of a colour lookup table (lut) or a probability image (prob)")
    if lut is not None:
        lut = np.ascontiguousarray(lut, dtype=np.float32)
        bins = round(len(lut) ** (1 / 3))
        if lut.ndim != 1 or bins ** 3 != len(lut) or 256 % bins:
            raise ValueError(f"regions: lut must hold B^3 entries with B dividing 256, got {lut.shape}")
        shift = int(np.log2(256 // bins))
        prob = np.zeros((0, 0), np.float32)
    else:
        prob = np.ascontiguousarray(prob, dtype=np.float32)
        if prob.shape != (h, w):
            raise ValueError(f"regions: prob must be (H, W) = {(h, w)}, got {prob.shape}")
        lut, shift = np.zeros(1, np.float32), 0
    if occlusion is None:
        occ = np.zeros((0, 0), np.bool_)
    else:
        occ = np.ascontiguousarray(occlusion, dtype=np.bool_)
        if occ.shape != (h, w):
            raise ValueError(f"regions: occlusion must be (H, W) = {(h, w)}, got {occ.shape}")
    return np.ascontiguousarray(img), lut, shift, prob, occ


def project_lines(points: np.ndarray, normals: np.ndarray, T_cam_obj: np.ndarray, K: np.ndarray) -> Lines:
    """Project contour points ``(L, 3)`` and normals ``(L, 3)`` (object frame) into line centres and 2D normals."""
    p = _f64(points, (None, 3), "points")
    n = _f64(normals, (len(p), 3), "normals")
    T = _f64(T_cam_obj, (4, 4), "T_cam_obj")
    centers, n2, depth = np.empty((len(p), 2)), np.empty((len(p), 2)), np.empty(len(p))
    _project_lines(p, n, T[:3, :3].copy(), T[:3, 3].copy(), _f64(K, (3, 3), "K"), centers, n2, depth)
    return Lines(centers, n2, depth)


@njit(cache=True, nogil=True)
def _project_lines(points, normals, R, t, K, centers, n2, depth):
    """Centres = pi(R p + t); 2D normals = the projection's differential applied to R n, normalized."""
    fx, fy, cx, cy, sk = K[0, 0], K[1, 1], K[0, 2], K[1, 2], K[0, 1]
    for i in range(points.shape[0]):
        X = R[0, 0] * points[i, 0] + R[0, 1] * points[i, 1] + R[0, 2] * points[i, 2] + t[0]
        Y = R[1, 0] * points[i, 0] + R[1, 1] * points[i, 1] + R[1, 2] * points[i, 2] + t[1]
        Z = R[2, 0] * points[i, 0] + R[2, 1] * points[i, 1] + R[2, 2] * points[i, 2] + t[2]
        nX = R[0, 0] * normals[i, 0] + R[0, 1] * normals[i, 1] + R[0, 2] * normals[i, 2]
        nY = R[1, 0] * normals[i, 0] + R[1, 1] * normals[i, 1] + R[1, 2] * normals[i, 2]
        nZ = R[2, 0] * normals[i, 0] + R[2, 1] * normals[i, 1] + R[2, 2] * normals[i, 2]
        iz = 1.0 / Z
        centers[i, 0] = (fx * X + sk * Y) * iz + cx
        centers[i, 1] = fy * Y * iz + cy
        dx = (fx * (nX - X * iz * nZ) + sk * (nY - Y * iz * nZ)) * iz
        dy = fy * (nY - Y * iz * nZ) * iz
        nn = np.sqrt(dx * dx + dy * dy)
        if nn > 0.0:
            n2[i, 0], n2[i, 1] = dx / nn, dy / nn
        else:
            n2[i, 0], n2[i, 1] = 1.0, 0.0
        depth[i] = Z


@njit(cache=True, nogil=True, inline="always")
def _bin(image, shift, b, x, y):
    """Colour bin of pixel (x, y): ``(r >> shift) B^2 + (g >> shift) B + (b >> shift)`` with ``B = 2^b``.

    (Widened to int64 first: numba's serial pipeline shifts a uint8 by an int64 ~4x slower.)"""
    r = np.int64(image[y, x, 0]) >> shift
    g = np.int64(image[y, x, 1]) >> shift
    c = np.int64(image[y, x, 2]) >> shift
    return (r << (2 * b)) | (g << b) | c


@njit(cache=True, nogil=True, inline="always")
def _pixel_pf(image, lut, shift, prob, occ, x, y):
    """Foreground posterior of pixel (x, y); -1 when it carries no information (outside, occluded)."""
    h, w = image.shape[0], image.shape[1]
    if x < 0 or y < 0 or x >= w or y >= h:
        return -1.0
    if occ.shape[0] > 0 and occ[y, x]:
        return -1.0
    if prob.shape[0] > 0:
        p = float(prob[y, x])
    else:
        p = float(lut[_bin(image, shift, 8 - shift, x, y)])
    return min(max(p, EPS_PIXEL), 1.0 - EPS_PIXEL)


def line_distributions(image: np.ndarray, lines: Lines, scale: int, *, lut: np.ndarray | None = None,
                       prob: np.ndarray | None = None, occlusion: np.ndarray | None = None,
                       n_function: int = 8, n_distribution: int = 12, amplitude: float = 0.43, slope: float = 0.5,
                       min_var: float = 0.0, active: np.ndarray | None = None,
                       parallel: bool | None = None) -> Distributions:
    """Posterior mean / variance of the contour position along each line (see the module docstring).

    Args:
        image: ``(H, W, 3)`` uint8; lines: ``L`` lines; scale: pixels (steps) per segment.
        lut: ``(B^3,)`` pixel foreground posteriors per colour bin, or prob: ``(H, W)`` posteriors.
        occlusion: ``(H, W)`` bool pixels to ignore; active: ``(L,)`` bool lines to compute.
        min_var: floor of the variance in segments^2.
        parallel: spread the lines over numba's threads (None: when there are many, see ``PARALLEL_LINES``).
    """
    img, lut, shift, prob, occ = _image_inputs(image, lut, prob, occlusion)
    n = len(lines.centers)
    act = np.ones(n, np.bool_) if active is None else np.ascontiguousarray(active, dtype=np.bool_)
    hf, hb = smoothed_step(n_function, amplitude, slope)
    mu, var, valid = np.empty(n), np.empty(n), np.empty(n, np.bool_)
    with _threads(n, parallel):
        _line_distributions(img, lut, shift, prob, occ, _f64(lines.centers, (None, 2), "centers"),
                            _f64(lines.normals, (n, 2), "normals"), act, int(scale), n_distribution, hf, hb,
                            float(min_var), mu, var, valid)
    return Distributions(mu, var, valid)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _one_distribution(image, lut, shift, prob, occ, centers, normals, i, scale, n_dist, hf, hb, min_var, pf_seg,
                      dist, mu, var, valid):
    """Contour posterior of line ``i`` (writes ``mu[i]``, ``var[i]``, ``valid[i]``); scratch ``pf_seg``, ``dist``."""
    n_fun = hf.shape[0]
    n_seg = n_fun + n_dist - 1
    n_steps = n_seg * scale
    nx, ny = normals[i, 0], normals[i, 1]
    amax = max(abs(nx), abs(ny))
    vx, vy = nx / amax, ny / amax
    ell = 1.0 / amax
    half = n_steps * 0.5
    # snap the samples to pixel centres along the dominant axis: shift the origin by delta steps
    if abs(nx) >= abs(ny):
        first = centers[i, 0] + (0.5 - half) * vx
        delta = (math.floor(first + 0.5) - first) / vx
    else:
        first = centers[i, 1] + (0.5 - half) * vy
        delta = (math.floor(first + 0.5) - first) / vy
    cx, cy = centers[i, 0] + delta * vx, centers[i, 1] + delta * vy
    unknown = 0
    centre_unknown = False
    for j in range(n_seg):
        pf, pb = 1.0, 1.0
        for q in range(scale):
            k = j * scale + q
            tt = k + 0.5 - half
            x = math.floor(cx + tt * vx + 0.5)
            y = math.floor(cy + tt * vy + 0.5)
            p = _pixel_pf(image, lut, shift, prob, occ, x, y)
            if p < 0.0:
                unknown += 1
                if abs(tt) <= 1.0:
                    centre_unknown = True
                continue
            pf *= p
            pb *= 1.0 - p
        pf_seg[j] = pf / (pf + pb)
    if centre_unknown or 2 * unknown > n_steps:
        return
    total = 0.0
    for m in range(n_dist):
        prod = 1.0
        for k in range(n_fun):
            prod *= hf[k] * pf_seg[m + k] + hb[k] * (1.0 - pf_seg[m + k])
        dist[m] = prod
        total += prod
    if not (total > 0.0):
        return
    mean = 0.0
    for m in range(n_dist):
        dist[m] /= total
        mean += dist[m] * (m - (n_dist - 1) * 0.5)
    v = 0.0
    for m in range(n_dist):
        e = m - (n_dist - 1) * 0.5 - mean
        v += dist[m] * e * e
    unit = scale * ell
    mu[i] = mean * unit + delta * ell
    var[i] = max(v, min_var) * unit * unit
    valid[i] = True


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def _line_distributions(image, lut, shift, prob, occ, centers, normals, active, scale, n_dist, hf, hb, min_var,
                        mu, var, valid):
    for i in prange(centers.shape[0]):
        mu[i], var[i], valid[i] = 0.0, 0.0, False
        if active[i]:
            pf_seg = np.empty(hf.shape[0] + n_dist - 1)
            dist = np.empty(n_dist)
            _one_distribution(image, lut, shift, prob, occ, centers, normals, i, scale, n_dist, hf, hb, min_var,
                              pf_seg, dist, mu, var, valid)


def newton_system(points: np.ndarray, lines: Lines, dist: Distributions, T_cam_obj: np.ndarray, K: np.ndarray,
                  weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Gauss-Newton system of the line residuals at ``T_cam_obj``.

    Args:
        points: ``(L, 3)`` contour points, object frame; lines / dist: the lines they were projected to
            (centres and normals are held fixed) and their contour posteriors.
        weights: ``(L,)`` extra per-line weights (default 1).
    Returns:
        ``H (6, 6)``, ``g (6,)`` over ``theta = (w, tau)`` and the cost ``0.5 * sum w r^2``.
    """
    p = _f64(points, (None, 3), "points")
    n = len(p)
    T = _f64(T_cam_obj, (4, 4), "T_cam_obj")
    wts = np.ones(n) if weights is None else _f64(weights, (n,), "weights")
    H, g, cost = np.zeros((6, 6)), np.zeros(6), np.zeros(1)
    _newton_system(p, _f64(lines.centers, (n, 2), "centers"), _f64(lines.normals, (n, 2), "normals"),
                   _f64(dist.mu, (n,), "mu"), _f64(dist.var, (n,), "var"), np.ascontiguousarray(dist.valid), wts,
                   T[:3, :3].copy(), T[:3, 3].copy(), _f64(K, (3, 3), "K"), H, g, cost)
    return H, g, float(cost[0])


@njit(cache=True, nogil=True, error_model="numpy")
def _newton_system(points, centers, normals, mu, var, valid, weights, R, t, K, H, g, cost):
    fx, fy, cx, cy, sk = K[0, 0], K[1, 1], K[0, 2], K[1, 2], K[0, 1]
    J = np.empty(6)
    for i in range(points.shape[0]):
        if not valid[i] or not (var[i] > 0.0) or weights[i] == 0.0:
            continue
        px, py, pz = points[i, 0], points[i, 1], points[i, 2]
        X = R[0, 0] * px + R[0, 1] * py + R[0, 2] * pz + t[0]
        Y = R[1, 0] * px + R[1, 1] * py + R[1, 2] * pz + t[1]
        Z = R[2, 0] * px + R[2, 1] * py + R[2, 2] * pz + t[2]
        iz = 1.0 / Z
        u = (fx * X + sk * Y) * iz + cx
        v = fy * Y * iz + cy
        nx, ny = normals[i, 0], normals[i, 1]
        r = nx * (u - centers[i, 0]) + ny * (v - centers[i, 1]) - mu[i]
        # a = dpi/dX^T n (camera frame), b = R^T a (object frame)
        ax = nx * fx * iz
        ay = (nx * sk + ny * fy) * iz
        az = -(nx * (fx * X + sk * Y) + ny * fy * Y) * iz * iz
        bx = R[0, 0] * ax + R[1, 0] * ay + R[2, 0] * az
        by = R[0, 1] * ax + R[1, 1] * ay + R[2, 1] * az
        bz = R[0, 2] * ax + R[1, 2] * ay + R[2, 2] * az
        J[0] = py * bz - pz * by
        J[1] = pz * bx - px * bz
        J[2] = px * by - py * bx
        J[3], J[4], J[5] = bx, by, bz
        w = weights[i] / var[i]
        cost[0] += 0.5 * w * r * r
        for a in range(6):
            g[a] += w * r * J[a]
            for b in range(a, 6):
                H[a, b] += w * J[a] * J[b]
    for a in range(6):
        for b in range(a):
            H[a, b] = H[b, a]


def accumulate_histograms(image: np.ndarray, lines: Lines, fg_len: np.ndarray, bg_len: np.ndarray,
                          valid: np.ndarray, hist_f: np.ndarray, hist_b: np.ndarray, *,
                          occlusion: np.ndarray | None = None, skip: float = 0.5) -> None:
    """Add pixel colours along lines into the colour histograms ``hist_f``, ``hist_b`` ``(B^3,)`` float64 (in place).

    Foreground: pixels ``c - r n`` for ``r`` in ``[skip, fg_len)``; background ``c + r n`` for ``r`` in
    ``[skip, bg_len)`` (pixels, unit steps along the normal); occluded and outside pixels are skipped.
    """
    img, _, _, _, occ = _image_inputs(image, np.zeros(hist_f.shape, np.float32), None, occlusion)
    if hist_f.dtype != np.float64 or hist_b.dtype != np.float64 or hist_f.shape != hist_b.shape:
        raise ValueError("regions: histograms must be float64 (B^3,) of the same size")
    shift = int(np.log2(256 // round(len(hist_f) ** (1 / 3))))
    n = len(lines.centers)
    _accumulate(img, shift, occ, _f64(lines.centers, (n, 2), "centers"), _f64(lines.normals, (n, 2), "normals"),
                _f64(fg_len, (n,), "fg_len"), _f64(bg_len, (n,), "bg_len"), np.ascontiguousarray(valid, np.bool_),
                float(skip), hist_f, hist_b)


@njit(cache=True, nogil=True)
def _accumulate(image, shift, occ, centers, normals, fg_len, bg_len, valid, skip, hist_f, hist_b):
    h, w = image.shape[0], image.shape[1]
    b = 8 - shift
    for i in range(centers.shape[0]):
        if not valid[i]:
            continue
        for side in range(2):
            sign = -1.0 if side == 0 else 1.0
            length = fg_len[i] if side == 0 else bg_len[i]
            r = skip
            while r < length:
                x = math.floor(centers[i, 0] + sign * r * normals[i, 0] + 0.5)
                y = math.floor(centers[i, 1] + sign * r * normals[i, 1] + 0.5)
                r += 1.0
                if x < 0 or y < 0 or x >= w or y >= h or (occ.shape[0] > 0 and occ[y, x]):
                    continue
                k = _bin(image, shift, b, x, y)
                if side == 0:
                    hist_f[k] += 1.0
                else:
                    hist_b[k] += 1.0


def line_agreement(image: np.ndarray, lines: Lines, in_len: np.ndarray, out_len: np.ndarray, *,
                   lut: np.ndarray | None = None, prob: np.ndarray | None = None,
                   occlusion: np.ndarray | None = None, active: np.ndarray | None = None,
                   parallel: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """How well the image agrees with a contour at each line centre.

    ``a_i = mean p_f(inside) + mean p_b(outside) - 1`` in ``[-1, 1]`` over the pixels ``c - (r - 1/2) n``
    (``r = 1 .. in_len``) and ``c + (r - 1/2) n`` (``r = 1 .. out_len``); ``ok_i`` is False when fewer
    than half of either side's pixels carry information. Returns ``(a (L,), ok (L,))``.
    """
    img, lut, shift, prob, occ = _image_inputs(image, lut, prob, occlusion)
    n = len(lines.centers)
    act = np.ones(n, np.bool_) if active is None else np.ascontiguousarray(active, dtype=np.bool_)
    a, ok = np.empty(n), np.empty(n, np.bool_)
    with _threads(n, parallel):
        _line_agreement(img, lut, shift, prob, occ, _f64(lines.centers, (n, 2), "centers"),
                        _f64(lines.normals, (n, 2), "normals"), _f64(in_len, (n,), "in_len"),
                        _f64(out_len, (n,), "out_len"), act, a, ok)
    return a, ok


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _one_agreement(image, lut, shift, prob, occ, centers, normals, in_len, out_len, i, a, ok):
    a[i], ok[i] = 0.0, False
    total = 0.0
    for side in range(2):
        sign = -1.0 if side == 0 else 1.0
        n_px = max(1, int(in_len[i] if side == 0 else out_len[i]))
        s, cnt = 0.0, 0
        for r in range(n_px):
            t = sign * (r + 0.5)
            x = math.floor(centers[i, 0] + t * normals[i, 0] + 0.5)
            y = math.floor(centers[i, 1] + t * normals[i, 1] + 0.5)
            p = _pixel_pf(image, lut, shift, prob, occ, x, y)
            if p < 0.0:
                continue
            s += p if side == 0 else 1.0 - p
            cnt += 1
        if 2 * cnt < n_px:
            return
        total += s / cnt
    a[i] = total - 1.0
    ok[i] = True


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def _line_agreement(image, lut, shift, prob, occ, centers, normals, in_len, out_len, active, a, ok):
    for i in prange(centers.shape[0]):
        a[i], ok[i] = 0.0, False
        if active[i]:
            _one_agreement(image, lut, shift, prob, occ, centers, normals, in_len, out_len, i, a, ok)
