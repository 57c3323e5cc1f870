"""The per-frame hand fit's Levenberg-Marquardt, as one numba kernel.

The same problem as ``models.hands.fitting._Problem.solve`` (all parameters free, or
the rigid stage of a cold start: rotation and translation only; one robust scale per
iteration, annealed on cold starts): robust 2D reprojection (Geman-McClure through
IRLS), root-relative 3D landmarks, the pose prior (linear in the pose), the joint
limits (piecewise linear), the shape prior; keypoints and their Jacobian from
``handkin``. Each hand is solved on its own (the torch version batches them); each
iteration re-weights the 2D residuals, solves the damped normal equations by Cholesky
and keeps the step where it lowers the cost. The torch solve is the naive twin (the
tests hold them equal on float64 models); this one exists for speed: the torch loop
spends ~5 ms per hand on ~250 small operations, the kernel ~0.2 ms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from .handkin import HandKinematics, HandPoints, _points_jacobian


@dataclass(frozen=True)
class FitTerms:
    """The fit's weights and its priors as arrays (P pose joints, S shape parameters)."""

    sigma_px: float
    robust_px: float
    sigma_3d: float
    prior_A: np.ndarray  # (R, 3 P) the pose prior's Jacobian (weighted; the prior is linear)
    prior_c: np.ndarray  # (R,) its residual at the zero pose
    to_anatomical: np.ndarray  # (P, 3, 3)
    lower: np.ndarray  # (P, 3) joint limits, radians
    upper: np.ndarray  # (P, 3)
    limit_scale: float  # residual per radian outside (weight included)
    shape_scale: np.ndarray  # (S,) shape prior: weight / std per parameter
    fit_shape: bool
    damping: float


def fit_lm(kin: HandKinematics, keypoints: HandPoints, terms: FitTerms, x: np.ndarray, uv: np.ndarray,
           conf: np.ndarray, K: np.ndarray, landmarks: np.ndarray | None, iterations: int,
           scales: np.ndarray | None = None, rigid: bool = False
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Levenberg-Marquardt fits of B hands from ``x``.

    Args:
        x: (B, N) starting parameters. uv: (B, 21, 2) pixels (0 where missing); conf: (B, 21) (0: ignored).
        K: (B, 3, 3). landmarks: (B, 21, 3) relative 3D keypoints, or None.
        scales: the Geman-McClure scale of each iteration, pixels (the last one repeats; default
            ``terms.robust_px``). rigid: only the global rotation and the translation move.
    Returns:
        parameters (B, N), robust cost (B,) at the last iteration's scale, keypoints (B, 21, 3), the last
        iteration's 2D weights (B, 21); float64.
    """
    x = np.array(x, dtype=np.float64)
    B, N = x.shape
    if N != kin.num_params or uv.shape != (B, 21, 2) or conf.shape != (B, 21) or K.shape != (B, 3, 3):
        raise ValueError(f"fit_warm: shapes x {x.shape}, uv {uv.shape}, conf {conf.shape}, K {K.shape}")
    sc = np.asarray([terms.robust_px] if scales is None or len(scales) == 0 else scales, dtype=np.float64)
    with_lm = landmarks is not None
    lm = np.ascontiguousarray(landmarks if with_lm else np.zeros((B, 21, 3)), dtype=np.float64)
    cost = np.zeros(B)
    kp = np.zeros((B, 21, 3))
    w = np.zeros((B, 21))
    f64 = np.float64
    _fit_lm(kin.parent, kin.order, kin.frames, kin.j_template, kin.j_shapedirs, kin.log_scale,
              keypoints.template, keypoints.shapedirs, keypoints.posedirs, keypoints.joints, keypoints.weights,
              x, np.ascontiguousarray(uv, f64), np.ascontiguousarray(conf, f64), np.ascontiguousarray(K, f64), lm,
              with_lm, float(terms.sigma_px), sc, bool(rigid), float(terms.sigma_3d),
              np.ascontiguousarray(terms.prior_A, f64), np.ascontiguousarray(terms.prior_c, f64),
              np.ascontiguousarray(terms.to_anatomical, f64), np.ascontiguousarray(terms.lower, f64),
              np.ascontiguousarray(terms.upper, f64), float(terms.limit_scale),
              np.ascontiguousarray(terms.shape_scale, f64), bool(terms.fit_shape), float(terms.damping),
              int(iterations), cost, kp, w)
    return x, cost, kp, w


@njit(cache=True)
def _evaluate(parent, order, frames, j_template, j_shapedirs, log_scale, p_template, p_shapedirs, p_posedirs,
              p_joints, p_weights, xb, uv, K, lm, sw3, with_lm, sigma_px, sigma_3d, prior_A, prior_c, to_anat,
              lower, upper, limit_scale, shape_scale, fit_shape, kp, proj, J2, res, jac, jk, mj):
    """Keypoints, projections, the unweighted 2D Jacobian / sigma_px (21, 2, N), the other residuals and rows.
    ``jk`` (1, 21, 3, N) and ``mj`` (3, N): scratch."""
    N = xb.shape[1]
    P = to_anat.shape[0]
    S = shape_scale.shape[0]
    jk[:, :, :, :] = 0.0  # the kernel writes the non-zero columns only
    _points_jacobian(parent, order, frames, j_template, j_shapedirs, log_scale, p_template, p_shapedirs,
                     p_posedirs, p_joints, p_weights, xb, kp, jk, True)
    for k in range(21):
        hx = K[0, 0] * kp[0, k, 0] + K[0, 1] * kp[0, k, 1] + K[0, 2] * kp[0, k, 2]
        hy = K[1, 0] * kp[0, k, 0] + K[1, 1] * kp[0, k, 1] + K[1, 2] * kp[0, k, 2]
        hz = K[2, 0] * kp[0, k, 0] + K[2, 1] * kp[0, k, 1] + K[2, 2] * kp[0, k, 2]
        depth = max(hz, 1e-4)
        proj[k, 0] = hx / depth
        proj[k, 1] = hy / depth
        for a in range(2):
            d0 = (K[a, 0] - proj[k, a] * K[2, 0]) / depth
            d1 = (K[a, 1] - proj[k, a] * K[2, 1]) / depth
            d2 = (K[a, 2] - proj[k, a] * K[2, 2]) / depth
            for c in range(N):
                J2[k, a, c] = (d0 * jk[0, k, 0, c] + d1 * jk[0, k, 1, c] + d2 * jk[0, k, 2, c]) / sigma_px
    res[:] = 0.0
    jac[:, :] = 0.0
    r = 0
    if with_lm:
        mk = np.zeros(3)
        ml = np.zeros(3)
        mj[:, :] = 0.0
        for k in range(21):
            for c in range(3):
                mk[c] += kp[0, k, c] / 21.0
                ml[c] += lm[k, c] / 21.0
                for q in range(N):
                    mj[c, q] += jk[0, k, c, q] / 21.0
        for k in range(21):
            w3 = sw3[k] / sigma_3d
            for c in range(3):
                res[r] = ((kp[0, k, c] - mk[c]) - (lm[k, c] - ml[c])) * w3
                for q in range(N):
                    jac[r, q] = (jk[0, k, c, q] - mj[c, q]) * w3
                r += 1
    for i in range(prior_A.shape[0]):  # pose prior: linear
        v = prior_c[i]
        for q in range(3 * P):
            v += prior_A[i, q] * xb[0, 3 + q]
            jac[r, 3 + q] = prior_A[i, q]
        res[r] = v
        r += 1
    for j in range(P):  # joint limits on the anatomical coordinates
        for i in range(3):
            a = (to_anat[j, i, 0] * xb[0, 3 + 3 * j] + to_anat[j, i, 1] * xb[0, 4 + 3 * j]
                 + to_anat[j, i, 2] * xb[0, 5 + 3 * j])
            sign = 0.0
            if a > upper[j, i]:
                res[r] = (a - upper[j, i]) * limit_scale
                sign = 1.0
            elif a < lower[j, i]:
                res[r] = (lower[j, i] - a) * limit_scale
                sign = -1.0
            if sign != 0.0:
                for c in range(3):
                    jac[r, 3 + 3 * j + c] = sign * to_anat[j, i, c] * limit_scale
            r += 1
    if fit_shape:
        for s in range(S):
            res[r] = shape_scale[s] * xb[0, 3 + 3 * P + s]
            jac[r, 3 + 3 * P + s] = shape_scale[s]
            r += 1


@njit(cache=True)
def _cholesky_solve(A, g, out) -> bool:
    """A^-1 g by Cholesky into out; False if A is not positive definite."""
    n = A.shape[0]
    L = np.zeros((n, n))
    for j in range(n):
        s = A[j, j]
        for k in range(j):
            s -= L[j, k] * L[j, k]
        if not s > 0.0:
            return False
        d = np.sqrt(s)
        L[j, j] = d
        for i in range(j + 1, n):
            t = A[i, j]
            for k in range(j):
                t -= L[i, k] * L[j, k]
            L[i, j] = t / d
    for i in range(n):
        t = g[i]
        for k in range(i):
            t -= L[i, k] * out[k]
        out[i] = t / L[i, i]
    for i in range(n - 1, -1, -1):
        t = out[i]
        for k in range(i + 1, n):
            t -= L[k, i] * out[k]
        out[i] = t / L[i, i]
    return True


@njit(cache=True)
def _fit_lm(parent, order, frames, j_template, j_shapedirs, log_scale, p_template, p_shapedirs, p_posedirs,
            p_joints, p_weights, x, uv, conf, K, lm, with_lm, sigma_px, scales, rigid, sigma_3d, prior_A, prior_c,
            to_anat, lower, upper, limit_scale, shape_scale, fit_shape, damping, iterations, cost_out, kp_out,
            w_out):
    B, N = x.shape
    P = to_anat.shape[0]
    S = shape_scale.shape[0]
    R = (63 if with_lm else 0) + prior_A.shape[0] + 3 * P + (S if fit_shape else 0)
    kp_c = np.zeros((1, 21, 3))
    proj_c = np.zeros((21, 2))
    J2_c = np.zeros((21, 2, N))
    res_c = np.zeros(R)
    jac_c = np.zeros((R, N))
    kp_n = np.zeros((1, 21, 3))
    proj_n = np.zeros((21, 2))
    J2_n = np.zeros((21, 2, N))
    res_n = np.zeros(R)
    jac_n = np.zeros((R, N))
    xb = np.zeros((1, N))
    jk = np.zeros((1, 21, 3, N))
    mj = np.zeros((3, N))
    xn = np.zeros((1, N))
    sw2 = np.zeros(21)
    H = np.zeros((N, N))
    g = np.zeros(N)
    delta = np.zeros(N)
    free = np.ones(N, np.bool_)
    if rigid:  # rotation and translation only
        for p in range(3, N - 3):
            free[p] = False
    elif not fit_shape:
        for s in range(S):
            free[3 + 3 * P + s] = False
    n_sc = scales.shape[0]
    for b in range(B):
        sw3 = np.sqrt(conf[b]) if with_lm else np.zeros(21)
        xb[0, :] = x[b]
        _evaluate(parent, order, frames, j_template, j_shapedirs, log_scale, p_template, p_shapedirs, p_posedirs,
                  p_joints, p_weights, xb, uv[b], K[b], lm[b], sw3, with_lm, sigma_px, sigma_3d, prior_A, prior_c,
                  to_anat, lower, upper, limit_scale, shape_scale, fit_shape, kp_c, proj_c, J2_c, res_c, jac_c, jk,
                  mj)
        lam = damping
        for k in range(21):
            w_out[b, k] = conf[b, k]
        for it in range(iterations):
            sc = scales[min(it, n_sc - 1)]
            s2 = sc * sc
            for k in range(21):
                ex = proj_c[k, 0] - uv[b, k, 0]
                ey = proj_c[k, 1] - uv[b, k, 1]
                gm = s2 / (s2 + ex * ex + ey * ey)
                w_out[b, k] = conf[b, k] * gm * gm
                sw2[k] = np.sqrt(w_out[b, k])
            # normal equations of the weighted residuals
            cost = 0.0
            H[:, :] = 0.0
            g[:] = 0.0
            for k in range(21):
                for a in range(2):
                    rk = (proj_c[k, a] - uv[b, k, a]) / sigma_px * sw2[k]
                    cost += rk * rk
                    for p in range(N):
                        jp = J2_c[k, a, p] * sw2[k]
                        if jp == 0.0:
                            continue
                        g[p] += jp * rk
                        for q in range(p, N):
                            H[p, q] += jp * J2_c[k, a, q] * sw2[k]
            for i in range(R):
                cost += res_c[i] * res_c[i]
                for p in range(N):
                    jp = jac_c[i, p]
                    if jp == 0.0:
                        continue
                    g[p] += jp * res_c[i]
                    for q in range(p, N):
                        H[p, q] += jp * jac_c[i, q]
            for p in range(N):
                for q in range(p):
                    H[p, q] = H[q, p]
            for p in range(N):
                if free[p]:
                    H[p, p] += lam * H[p, p] + 1e-6
                else:
                    for q in range(N):
                        H[p, q] = 0.0
                        H[q, p] = 0.0
                    H[p, p] = 1.0
                    g[p] = 0.0
            if not _cholesky_solve(H, g, delta):
                delta[:] = 0.0
            for p in range(N):
                xn[0, p] = xb[0, p] - delta[p]
            _evaluate(parent, order, frames, j_template, j_shapedirs, log_scale, p_template, p_shapedirs,
                      p_posedirs, p_joints, p_weights, xn, uv[b], K[b], lm[b], sw3, with_lm, sigma_px, sigma_3d,
                      prior_A, prior_c, to_anat, lower, upper, limit_scale, shape_scale, fit_shape, kp_n, proj_n,
                      J2_n, res_n, jac_n, jk, mj)
            cost_new = 0.0
            for k in range(21):
                for a in range(2):
                    rk = (proj_n[k, a] - uv[b, k, a]) / sigma_px * sw2[k]
                    cost_new += rk * rk
            for i in range(R):
                cost_new += res_n[i] * res_n[i]
            if cost_new < cost:
                xb[0, :] = xn[0]
                kp_c[:, :, :] = kp_n
                proj_c[:, :] = proj_n
                J2_c[:, :, :] = J2_n
                res_c[:] = res_n
                jac_c[:, :] = jac_n
                lam = max(lam * 0.3, 1e-7)
            else:
                lam = min(lam * 5.0, 1e7)
        x[b] = xb[0]
        # the robust objective itself at the final estimate (to compare estimates), at the last scale
        sc = scales[min(max(iterations - 1, 0), n_sc - 1)]
        s2 = sc * sc
        c = 0.0
        for k in range(21):
            ex = proj_c[k, 0] - uv[b, k, 0]
            ey = proj_c[k, 1] - uv[b, k, 1]
            e2 = ex * ex + ey * ey
            c += conf[b, k] * s2 * e2 / (s2 + e2)
        c /= sigma_px * sigma_px
        for i in range(R):
            c += res_c[i] * res_c[i]
        cost_out[b] = c
        kp_out[b] = kp_c[0]
