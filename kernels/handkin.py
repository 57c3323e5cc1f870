"""Hand keypoints (or mesh vertices) and their exact Jacobian for a batch of hands, as one numba kernel.

The same mathematics as ``models.hands.jacobian.keypoints_and_jacobian`` (the lever
formulation: a joint's parameters rotate its subtree about its posed position; pose
correctives of the tips; shape through the rest joints and points, linear or log
scale), written as loops over one hand's ~20 joints and 21 keypoints. The torch
version is its naive twin (the tests hold them equal); this one exists for speed: the
per-frame fit evaluates it ~5 times per hand and frame, where torch spends ~1.2 ms per
call on dispatching ~100 small operations and numba ~20 us on the arithmetic.

Keypoints and vertices are the same kind of point here: a rest template with shape
directions (and, for MANO's tips and vertices, pose correctives) skinned by a few
joints (a joint keypoint is its joint's rest position with weight 1 on it). Model
constants come packed in :class:`HandKinematics` and the points in :class:`HandPoints`
(``models.hands.jacobian`` builds both from a ``HandModel``); parameters are one row per
hand, ``[global_orient (3), hand_pose (3 P), betas (S), transl (3)]``. The torch
``vertices_and_jacobian`` is the vertex twin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit


@dataclass(frozen=True)
class HandKinematics:
    """A hand model's skeleton as float64 / int64 arrays (J joints, S shape parameters)."""

    parent: np.ndarray  # (J,) parent joint, -1 for the root
    order: np.ndarray  # (J,) joints in an order where each parent comes before its children
    frames: np.ndarray  # (J, 3, 3) parameter frame of each joint (identity for the root)
    j_template: np.ndarray  # (J, 3)
    j_shapedirs: np.ndarray  # (J, 3, S_lin)
    log_scale: bool

    @property
    def num_params(self) -> int:
        return 3 * len(self.parent) + self.num_betas + 3

    @property
    def num_betas(self) -> int:
        return self.j_shapedirs.shape[2] + (1 if self.log_scale else 0)


@dataclass(frozen=True)
class HandPoints:
    """Skinned points of a hand model (M points): keypoints or mesh vertices."""

    template: np.ndarray  # (M, 3) rest position at the mean shape
    shapedirs: np.ndarray  # (M, 3, S_lin)
    posedirs: np.ndarray  # (M, J - 1, 3, 3, 3) pose correctives [point, joint, p, q, xyz]; (0, ...) if none
    joints: np.ndarray  # (M, K) int64 joints skinning each point (padded with 0)
    weights: np.ndarray  # (M, K) their weights (padded with 0)

    def subset(self, ids: np.ndarray) -> HandPoints:
        ids = np.asarray(ids, np.int64)
        pd = self.posedirs[ids] if len(self.posedirs) else self.posedirs
        return HandPoints(self.template[ids], self.shapedirs[ids], pd, self.joints[ids], self.weights[ids])


def sparse_weights(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(M, J) dense skinning weights -> (M, K) joint ids and weights of the non-zero ones (K the most per point)."""
    nz = weights != 0
    K = max(int(nz.sum(1).max()), 1) if len(weights) else 1
    joints = np.zeros((len(weights), K), np.int64)
    vals = np.zeros((len(weights), K))
    for m in range(len(weights)):
        js = np.flatnonzero(nz[m])
        joints[m, :len(js)] = js
        vals[m, :len(js)] = weights[m, js]
    return joints, vals


def points_jacobian(kin: HandKinematics, points: HandPoints, x: np.ndarray,
                    dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Posed points (B, M, 3) and their Jacobian (B, M, 3, N) of B hands ``x`` (B, N); computed in float64,
    stored as ``dtype``."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != kin.num_params:
        raise ValueError(f"points_jacobian: parameters must be (B, {kin.num_params}), got {x.shape}")
    B, M = x.shape[0], len(points.template)
    out = np.empty((B, M, 3), dtype)
    jac = np.zeros((B, M, 3, kin.num_params), dtype)
    _points_jacobian(kin.parent, kin.order, kin.frames, kin.j_template, kin.j_shapedirs, kin.log_scale,
                     points.template, points.shapedirs, points.posedirs, points.joints, points.weights, x, out, jac,
                     True)
    return out, jac


def posed_points(kin: HandKinematics, points: HandPoints, x: np.ndarray, dtype=np.float64) -> np.ndarray:
    """Posed points (B, M, 3) of B hands ``x`` (B, N), without the Jacobian."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != kin.num_params:
        raise ValueError(f"posed_points: parameters must be (B, {kin.num_params}), got {x.shape}")
    out = np.empty((x.shape[0], len(points.template), 3), dtype)
    _points_jacobian(kin.parent, kin.order, kin.frames, kin.j_template, kin.j_shapedirs, kin.log_scale,
                     points.template, points.shapedirs, points.posedirs, points.joints, points.weights, x, out,
                     np.zeros((0, 0, 3, kin.num_params), dtype), False)
    return out


@njit(cache=True, inline="always")
def _rodrigues(w, out):
    """Rotation matrix of axis-angle w (3,) into out (3, 3); the series below 1e-4 rad (as the torch code)."""
    t2 = w[0] * w[0] + w[1] * w[1] + w[2] * w[2]
    if t2 < 1e-8:
        a = 1.0 - t2 / 6.0
        b = 0.5 - t2 / 24.0
    else:
        t = math.sqrt(t2)
        a = math.sin(t) / t
        b = (1.0 - math.cos(t)) / t2
    x, y, z = w[0], w[1], w[2]
    out[0, 0] = 1.0 - b * (y * y + z * z)
    out[0, 1] = b * x * y - a * z
    out[0, 2] = b * x * z + a * y
    out[1, 0] = b * x * y + a * z
    out[1, 1] = 1.0 - b * (x * x + z * z)
    out[1, 2] = b * y * z - a * x
    out[2, 0] = b * x * z - a * y
    out[2, 1] = b * y * z + a * x
    out[2, 2] = 1.0 - b * (x * x + y * y)


@njit(cache=True, inline="always")
def _right_jacobian(w, out):
    """Right Jacobian of SO(3) at w (3,) into out (3, 3): I - a [w]x + b [w]x^2."""
    t2 = w[0] * w[0] + w[1] * w[1] + w[2] * w[2]
    if t2 < 1e-8:
        a = 0.5 - t2 / 24.0
        b = 1.0 / 6.0 - t2 / 120.0
    else:
        t = math.sqrt(t2)
        a = (1.0 - math.cos(t)) / t2
        b = (t - math.sin(t)) / (t2 * t)
    x, y, z = w[0], w[1], w[2]
    # I - a [w]x + b ([w]x)^2, ([w]x)^2 = w w^T - t2 I
    for i in range(3):
        for j in range(3):
            out[i, j] = b * w[i] * w[j] + ((1.0 - b * t2) if i == j else 0.0)
    out[0, 1] += a * z
    out[0, 2] -= a * y
    out[1, 0] -= a * z
    out[1, 2] += a * x
    out[2, 0] += a * y
    out[2, 1] -= a * x


@njit(cache=True)
def _points_jacobian(parent, order, frames, j_template, j_shapedirs, log_scale, p_template, p_shapedirs, p_posedirs,
                     p_joints, p_weights, x, out, jac, want_jac):
    B = x.shape[0]
    J = parent.shape[0]
    M = p_template.shape[0]
    K = p_joints.shape[1]
    SL = j_shapedirs.shape[2]
    S = SL + (1 if log_scale else 0)
    N = 3 * J + S + 3
    lin0 = 1 if log_scale else 0
    has_pd = p_posedirs.shape[0] > 0
    rotvec = np.empty((J, 3))
    rot = np.empty((J, 3, 3))
    g_rot = np.empty((J, 3, 3))
    g_pos = np.empty((J, 3))
    rest_j = np.empty((J, 3))
    ang = np.empty((J, 3, 3))
    jr = np.empty((3, 3))
    tmp = np.empty((3, 3))
    dj = np.empty((J, 3, S))
    step = np.empty((J, 3, S))
    e_shape = np.empty((J, 3, S))  # d(posed joint)/d beta - G_j d(rest joint)/d beta
    d_rot = np.zeros((J, 3, 3, 3))  # dR_a / d theta_a,i [a, i, p, q]
    rest = np.empty(3)
    plain = np.empty(3)
    dp = np.empty((3, S))
    y = np.empty((K, 3))
    blend = np.empty((3, 3))
    lever = np.zeros((J, 3))
    wm = np.zeros(J)
    for b in range(B):
        xb = x[b]
        scale = math.exp(xb[3 * J]) if log_scale else 1.0
        for j in range(J):
            for c in range(3):
                v = j_template[j, c]
                for s in range(SL):
                    v += j_shapedirs[j, c, s] * xb[3 * J + lin0 + s]
                rest_j[j, c] = v * scale
        # local rotations: the root's axis-angle, then each joint's parameters in its frame
        for c in range(3):
            rotvec[0, c] = xb[c]
        for a in range(1, J):
            for c in range(3):
                rotvec[a, c] = (frames[a, c, 0] * xb[3 * a] + frames[a, c, 1] * xb[3 * a + 1]
                                + frames[a, c, 2] * xb[3 * a + 2])
        for a in range(J):
            _rodrigues(rotvec[a], rot[a])
        # forward kinematics
        for k in range(J):
            a = order[k]
            p = parent[a]
            if p < 0:
                g_rot[a] = rot[a]
                g_pos[a] = rest_j[a]
                continue
            for i in range(3):
                for j in range(3):
                    g_rot[a, i, j] = (g_rot[p, i, 0] * rot[a, 0, j] + g_rot[p, i, 1] * rot[a, 1, j]
                                      + g_rot[p, i, 2] * rot[a, 2, j])
            for i in range(3):
                g_pos[a, i] = g_pos[p, i] + (g_rot[p, i, 0] * (rest_j[a, 0] - rest_j[p, 0])
                                             + g_rot[p, i, 1] * (rest_j[a, 1] - rest_j[p, 1])
                                             + g_rot[p, i, 2] * (rest_j[a, 2] - rest_j[p, 2]))
        # world angular velocity per parameter (A_a = G_a Jr(w_a) U_a) and dR_a/d theta_a,i = R_a [(Jr U_a)_i]x
        for a in range(J if want_jac else 0):
            _right_jacobian(rotvec[a], jr)
            for i in range(3):
                for j in range(3):
                    tmp[i, j] = jr[i, 0] * frames[a, 0, j] + jr[i, 1] * frames[a, 1, j] + jr[i, 2] * frames[a, 2, j]
            for i in range(3):
                for j in range(3):
                    ang[a, i, j] = g_rot[a, i, 0] * tmp[0, j] + g_rot[a, i, 1] * tmp[1, j] + g_rot[a, i, 2] * tmp[2, j]
            if has_pd and a > 0:
                for i in range(3):
                    c0, c1, c2 = tmp[0, i], tmp[1, i], tmp[2, i]
                    for p in range(3):
                        r0, r1, r2 = rot[a, p, 0], rot[a, p, 1], rot[a, p, 2]
                        d_rot[a, i, p, 0] = r1 * c2 - r2 * c1
                        d_rot[a, i, p, 1] = r2 * c0 - r0 * c2
                        d_rot[a, i, p, 2] = r0 * c1 - r1 * c0
        # shape: rest joints' derivatives (log scale: d/d beta_0 is the point itself), posed joints' derivatives
        for j in range(J if want_jac else 0):
            for c in range(3):
                if log_scale:
                    dj[j, c, 0] = rest_j[j, c]
                    for s in range(SL):
                        dj[j, c, 1 + s] = scale * j_shapedirs[j, c, s]
                else:
                    for s in range(SL):
                        dj[j, c, s] = j_shapedirs[j, c, s]
        for a in range(J if want_jac else 0):
            p = parent[a]
            for c in range(3):
                for s in range(S):
                    if p < 0:
                        step[a, c, s] = dj[a, c, s]
                    else:
                        step[a, c, s] = (g_rot[p, c, 0] * (dj[a, 0, s] - dj[p, 0, s])
                                         + g_rot[p, c, 1] * (dj[a, 1, s] - dj[p, 1, s])
                                         + g_rot[p, c, 2] * (dj[a, 2, s] - dj[p, 2, s]))
        for k in range(J if want_jac else 0):  # posed joint = sum of the steps of its ancestors (parents first)
            a = order[k]
            p = parent[a]
            for c in range(3):
                for s in range(S):
                    e_shape[a, c, s] = step[a, c, s] + (e_shape[p, c, s] if p >= 0 else 0.0)
        for a in range(J if want_jac else 0):  # e_shape: d_pos so far; take G_a dj_a off
            for c in range(3):
                for s in range(S):
                    e_shape[a, c, s] -= (g_rot[a, c, 0] * dj[a, 0, s] + g_rot[a, c, 1] * dj[a, 1, s]
                                         + g_rot[a, c, 2] * dj[a, 2, s])
        for m in range(M):
            # rest point: shaped, then pose-corrected
            for c in range(3):
                v = p_template[m, c]
                for s in range(SL):
                    v += p_shapedirs[m, c, s] * xb[3 * J + lin0 + s]
                plain[c] = v * scale
                rest[c] = plain[c]
            if has_pd:
                for c in range(3):
                    v = 0.0
                    for a in range(1, J):
                        for p in range(3):
                            for q in range(3):
                                v += (rot[a, p, q] - (1.0 if p == q else 0.0)) * p_posedirs[m, a - 1, p, q, c]
                    rest[c] += v
            # posed point under each skinning joint, and the point
            for c in range(3):
                out[b, m, c] = xb[N - 3 + c]
            for n in range(K):
                w = p_weights[m, n]
                if w == 0.0:
                    continue
                j = p_joints[m, n]
                for c in range(3):
                    y[n, c] = (g_rot[j, c, 0] * (rest[0] - rest_j[j, 0]) + g_rot[j, c, 1] * (rest[1] - rest_j[j, 1])
                               + g_rot[j, c, 2] * (rest[2] - rest_j[j, 2]) + g_pos[j, c])
                    out[b, m, c] += w * y[n, c]
            if not want_jac:
                continue
            # the blended rotation, and the rest point's shape derivative without the correctives
            for c in range(3):
                for q in range(3):
                    v = 0.0
                    for n in range(K):
                        v += p_weights[m, n] * g_rot[p_joints[m, n], c, q]
                    blend[c, q] = v
                if log_scale:
                    dp[c, 0] = plain[c]
                    for s in range(SL):
                        dp[c, 1 + s] = scale * p_shapedirs[m, c, s]
                else:
                    for s in range(SL):
                        dp[c, s] = p_shapedirs[m, c, s]
            # rotations: lever about each joint of the bones in its subtree (walk up from each skinning joint)
            for n in range(K):
                w = p_weights[m, n]
                if w == 0.0:
                    continue
                a = p_joints[m, n]
                while a >= 0:
                    lever[a, 0] += w * y[n, 0]
                    lever[a, 1] += w * y[n, 1]
                    lever[a, 2] += w * y[n, 2]
                    wm[a] += w
                    a = parent[a]
            for a in range(J):
                if wm[a] == 0.0:
                    continue
                lx = lever[a, 0] - wm[a] * g_pos[a, 0]
                ly = lever[a, 1] - wm[a] * g_pos[a, 1]
                lz = lever[a, 2] - wm[a] * g_pos[a, 2]
                for i in range(3):  # dX = A_i x L
                    ax, ay, az = ang[a, 0, i], ang[a, 1, i], ang[a, 2, i]
                    jac[b, m, 0, 3 * a + i] = ay * lz - az * ly
                    jac[b, m, 1, 3 * a + i] = az * lx - ax * lz
                    jac[b, m, 2, 3 * a + i] = ax * ly - ay * lx
                lever[a, 0] = 0.0
                lever[a, 1] = 0.0
                lever[a, 2] = 0.0
                wm[a] = 0.0
            # pose correctives move the rest point: the blended rotation maps dR_a/d theta_a,i through them
            if has_pd:
                for a in range(1, J):
                    for i in range(3):
                        for c in range(3):
                            v = 0.0
                            for p in range(3):
                                for q in range(3):
                                    v += p_posedirs[m, a - 1, p, q, c] * d_rot[a, i, p, q]
                            tmp[0, c] = v
                        for c in range(3):
                            jac[b, m, c, 3 * a + i] += (blend[c, 0] * tmp[0, 0] + blend[c, 1] * tmp[0, 1]
                                                        + blend[c, 2] * tmp[0, 2])
            # shape: the rest point through the blended rotation, the joints through their skinning weights
            for c in range(3):
                for s in range(S):
                    v = blend[c, 0] * dp[0, s] + blend[c, 1] * dp[1, s] + blend[c, 2] * dp[2, s]
                    for n in range(K):
                        w = p_weights[m, n]
                        if w != 0.0:
                            v += w * e_shape[p_joints[m, n], c, s]
                    jac[b, m, c, 3 * J + s] = v
                jac[b, m, c, N - 3 + c] = 1.0
