"""Generalized winding numbers of a triangle soup (Jacobson et al. 2013), fast by a BVH dipole tree.

``w(p) = sum_f solid_angle_f(p) / 4 pi`` is 1 inside and 0 outside a closed, outward
wound mesh and degrades gracefully for open or imperfect meshes (a cup without a lid
gets ~0.5 across its opening), so ``|w| > 0.5`` is a robust "inside" test.

Far from a BVH node its triangles are replaced by one dipole (the sum of their
vector areas at their area-weighted centroid, Barill et al. 2018, first order):
a node is expanded exactly when ``|p - centroid| <= beta * radius``. The error is
far below the 0.5 threshold for the default ``beta = 2``; ``beta = inf`` is exact.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._geom import tri_solid_angle
from ._parallel import launch
from .bvh import BVH

FOUR_PI = 4.0 * math.pi


def dipole_tree(bvh: BVH) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per node: area-weighted centroid (M, 3), summed vector area (M, 3), radius (M,) about that centroid."""
    return _dipoles(bvh.lo, bvh.hi, bvh.child, bvh.start, bvh.count, bvh.tris)


def winding_number(bvh: BVH, points: np.ndarray, beta: float = 2.0) -> np.ndarray:
    """Generalized winding number (N,) float64 of the mesh of ``bvh`` at ``points`` (N, 3)."""
    p = np.ascontiguousarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"points must be (N, 3), got {p.shape}")
    cen, area, rad = dipole_tree(bvh)
    out = np.empty(len(p))
    with launch(len(p), 1 << 13, 4):
        _winding_many(bvh.child, bvh.start, bvh.count, bvh.tris, cen, area, rad, p, float(beta), bvh.stack_size, out)
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def _dipoles(lo: np.ndarray, hi: np.ndarray, child: np.ndarray, start: np.ndarray, count: np.ndarray,
             tris: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = child.shape[0]
    cen = np.zeros((m, 3))
    area = np.zeros((m, 3))
    wsum = np.zeros(m)
    for n in range(m - 1, -1, -1):  # children are numbered after their parents
        c = child[n]
        if c < 0:
            for i in range(start[n], start[n] + count[n]):
                a, b, d = tris[i, 0], tris[i, 1], tris[i, 2]
                e1 = b - a
                e2 = d - a
                ax = 0.5 * (e1[1] * e2[2] - e1[2] * e2[1])
                ay = 0.5 * (e1[2] * e2[0] - e1[0] * e2[2])
                az = 0.5 * (e1[0] * e2[1] - e1[1] * e2[0])
                s = math.sqrt(ax * ax + ay * ay + az * az)
                area[n, 0] += ax
                area[n, 1] += ay
                area[n, 2] += az
                for k in range(3):
                    cen[n, k] += s * (a[k] + b[k] + d[k]) / 3.0
                wsum[n] += s
        else:
            for j in range(c, c + 2):
                for k in range(3):
                    area[n, k] += area[j, k]
                    cen[n, k] += cen[j, k] * wsum[j]
                wsum[n] += wsum[j]
        if wsum[n] > 0.0:
            for k in range(3):
                cen[n, k] /= wsum[n]
        else:
            for k in range(3):
                cen[n, k] = 0.5 * (lo[n, k] + hi[n, k])
    rad = np.empty(m)
    for n in range(m):  # farthest box corner from the centroid
        r2 = 0.0
        for k in range(3):
            r2 += max(cen[n, k] - lo[n, k], hi[n, k] - cen[n, k]) ** 2
        rad[n] = math.sqrt(r2)
    return cen, area, rad


@njit(cache=True, nogil=True, error_model="numpy")
def _winding(child: np.ndarray, start: np.ndarray, count: np.ndarray, tris: np.ndarray, cen: np.ndarray,
             area: np.ndarray, rad: np.ndarray, px: float, py: float, pz: float, beta: float,
             stack: np.ndarray) -> float:
    w = 0.0
    stack[0] = 0
    sp = 1
    while sp > 0:
        sp -= 1
        n = stack[sp]
        dx, dy, dz = cen[n, 0] - px, cen[n, 1] - py, cen[n, 2] - pz
        d2 = dx * dx + dy * dy + dz * dz
        if d2 > (beta * rad[n]) ** 2:
            w += (area[n, 0] * dx + area[n, 1] * dy + area[n, 2] * dz) / (d2 * math.sqrt(d2))
            continue
        c = child[n]
        if c < 0:
            for i in range(start[n], start[n] + count[n]):
                w += tri_solid_angle(px, py, pz, tris[i, 0], tris[i, 1], tris[i, 2])
        else:
            stack[sp] = c
            stack[sp + 1] = c + 1
            sp += 2
    return w / FOUR_PI


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def _winding_many(child: np.ndarray, start: np.ndarray, count: np.ndarray, tris: np.ndarray, cen: np.ndarray,
                  area: np.ndarray, rad: np.ndarray, points: np.ndarray, beta: float, stack_size: int,
                  out: np.ndarray) -> None:
    n = points.shape[0]
    chunk = 256
    for ci in prange((n + chunk - 1) // chunk):
        stack = np.empty(stack_size, np.int64)
        for q in range(ci * chunk, min(n, (ci + 1) * chunk)):
            out[q] = _winding(child, start, count, tris, cen, area, rad, points[q, 0], points[q, 1], points[q, 2],
                              beta, stack)
