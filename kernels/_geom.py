"""Scalar triangle primitives shared by the numba kernels (inlined into their callers).

All take and return float64 scalars / 3-vectors given as separate components, so
that numba keeps them in registers. Triangles are ``a, b, c`` (3,) arrays.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

INF = np.inf


@njit(cache=True, inline="always", error_model="numpy")
def _seg_d2(px: float, py: float, pz: float, a: np.ndarray, b: np.ndarray) -> float:
    """Squared distance from p to the segment ab (a point if a == b)."""
    ex, ey, ez = b[0] - a[0], b[1] - a[1], b[2] - a[2]
    ee = ex * ex + ey * ey + ez * ez
    t = 0.0
    if ee > 0.0:
        t = min(max(((px - a[0]) * ex + (py - a[1]) * ey + (pz - a[2]) * ez) / ee, 0.0), 1.0)
    qx, qy, qz = a[0] + t * ex - px, a[1] + t * ey - py, a[2] + t * ez - pz
    return qx * qx + qy * qy + qz * qz


@njit(cache=True, inline="always", error_model="numpy")
def tri_closest_d2(px: float, py: float, pz: float, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """Squared distance from point p to triangle abc (closest point by Voronoi regions)."""
    abx, aby, abz = b[0] - a[0], b[1] - a[1], b[2] - a[2]
    acx, acy, acz = c[0] - a[0], c[1] - a[1], c[2] - a[2]
    ab2 = abx * abx + aby * aby + abz * abz
    ac2 = acx * acx + acy * acy + acz * acz
    abac = abx * acx + aby * acy + abz * acz
    if ab2 * ac2 - abac * abac <= 1e-14 * ab2 * ac2:  # (nearly) zero area: nearest of the edges
        return min(_seg_d2(px, py, pz, a, b), _seg_d2(px, py, pz, b, c), _seg_d2(px, py, pz, c, a))
    apx, apy, apz = px - a[0], py - a[1], pz - a[2]
    d1 = abx * apx + aby * apy + abz * apz
    d2 = acx * apx + acy * apy + acz * apz
    if d1 <= 0.0 and d2 <= 0.0:  # vertex a
        return apx * apx + apy * apy + apz * apz
    bpx, bpy, bpz = px - b[0], py - b[1], pz - b[2]
    d3 = abx * bpx + aby * bpy + abz * bpz
    d4 = acx * bpx + acy * bpy + acz * bpz
    if d3 >= 0.0 and d4 <= d3:  # vertex b
        return bpx * bpx + bpy * bpy + bpz * bpz
    vc = d1 * d4 - d3 * d2
    if vc <= 0.0 and d1 >= 0.0 and d3 <= 0.0:  # edge ab
        v = d1 / (d1 - d3)
        qx, qy, qz = apx - v * abx, apy - v * aby, apz - v * abz
        return qx * qx + qy * qy + qz * qz
    cpx, cpy, cpz = px - c[0], py - c[1], pz - c[2]
    d5 = abx * cpx + aby * cpy + abz * cpz
    d6 = acx * cpx + acy * cpy + acz * cpz
    if d6 >= 0.0 and d5 <= d6:  # vertex c
        return cpx * cpx + cpy * cpy + cpz * cpz
    vb = d5 * d2 - d1 * d6
    if vb <= 0.0 and d2 >= 0.0 and d6 <= 0.0:  # edge ac
        w = d2 / (d2 - d6)
        qx, qy, qz = apx - w * acx, apy - w * acy, apz - w * acz
        return qx * qx + qy * qy + qz * qz
    va = d3 * d6 - d5 * d4
    if va <= 0.0 and (d4 - d3) >= 0.0 and (d5 - d6) >= 0.0:  # edge bc
        w = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        qx = bpx - w * (c[0] - b[0])
        qy = bpy - w * (c[1] - b[1])
        qz = bpz - w * (c[2] - b[2])
        return qx * qx + qy * qy + qz * qz
    denom = 1.0 / (va + vb + vc)  # interior: project onto the plane
    v = vb * denom
    w = vc * denom
    qx = apx - v * abx - w * acx
    qy = apy - v * aby - w * acy
    qz = apz - v * abz - w * acz
    return qx * qx + qy * qy + qz * qz


@njit(cache=True, inline="always", error_model="numpy")
def ray_tri(ox: float, oy: float, oz: float, dx: float, dy: float, dz: float,
            a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """Distance t along the ray o + t d to triangle abc (Moller-Trumbore, two-sided), or inf if missed."""
    e1x, e1y, e1z = b[0] - a[0], b[1] - a[1], b[2] - a[2]
    e2x, e2y, e2z = c[0] - a[0], c[1] - a[1], c[2] - a[2]
    px = dy * e2z - dz * e2y
    py = dz * e2x - dx * e2z
    pz = dx * e2y - dy * e2x
    det = e1x * px + e1y * py + e1z * pz
    if det == 0.0:
        return INF
    inv = 1.0 / det
    tx, ty, tz = ox - a[0], oy - a[1], oz - a[2]
    u = (tx * px + ty * py + tz * pz) * inv
    if u < 0.0 or u > 1.0:
        return INF
    qx = ty * e1z - tz * e1y
    qy = tz * e1x - tx * e1z
    qz = tx * e1y - ty * e1x
    v = (dx * qx + dy * qy + dz * qz) * inv
    if v < 0.0 or u + v > 1.0:
        return INF
    return (e2x * qx + e2y * qy + e2z * qz) * inv


@njit(cache=True, inline="always", error_model="numpy")
def tri_solid_angle(px: float, py: float, pz: float, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """Signed solid angle of triangle abc seen from p (positive behind its normal; van Oosterom-Strackee)."""
    ax, ay, az = a[0] - px, a[1] - py, a[2] - pz
    bx, by, bz = b[0] - px, b[1] - py, b[2] - pz
    cx, cy, cz = c[0] - px, c[1] - py, c[2] - pz
    la = math.sqrt(ax * ax + ay * ay + az * az)
    lb = math.sqrt(bx * bx + by * by + bz * bz)
    lc = math.sqrt(cx * cx + cy * cy + cz * cz)
    det = ax * (by * cz - bz * cy) - ay * (bx * cz - bz * cx) + az * (bx * cy - by * cx)
    den = (la * lb * lc + (ax * bx + ay * by + az * bz) * lc + (bx * cx + by * cy + bz * cz) * la
           + (cx * ax + cy * ay + cz * az) * lb)
    return 2.0 * math.atan2(det, den)


@njit(cache=True, inline="always", error_model="numpy")
def box_d2(px: float, py: float, pz: float, lo: np.ndarray, hi: np.ndarray) -> float:
    """Squared distance from p to the axis-aligned box [lo, hi] (0 inside)."""
    dx = max(lo[0] - px, 0.0, px - hi[0])
    dy = max(lo[1] - py, 0.0, py - hi[1])
    dz = max(lo[2] - pz, 0.0, pz - hi[2])
    return dx * dx + dy * dy + dz * dz
