"""A bounding-volume hierarchy over a triangle mesh (binned SAH, built in numba) and nearest-distance queries.

The tree is flat arrays: node ``n`` has box ``lo[n], hi[n]``; an inner node's
children are ``child[n]`` and ``child[n] + 1`` (always numbered after their parent);
a leaf (``child[n] == -1``) holds triangles ``start[n] : start[n] + count[n]`` of
``tris``, the mesh's triangles in tree order (``order`` maps them back to face ids).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from ._geom import box_d2, tri_closest_d2
from ._parallel import launch

N_BINS = 16


@dataclass(frozen=True)
class BVH:
    """A BVH over F triangles with M nodes (see the module docstring for the layout)."""

    lo: np.ndarray
    """(M, 3) float64 node box minimum."""
    hi: np.ndarray
    """(M, 3) float64 node box maximum."""
    child: np.ndarray
    """(M,) int32 first child of an inner node, -1 for a leaf."""
    start: np.ndarray
    """(M,) int32 a leaf's first triangle in ``tris``."""
    count: np.ndarray
    """(M,) int32 a leaf's number of triangles."""
    tris: np.ndarray
    """(F, 3, 3) float64 triangle vertices in tree order."""
    order: np.ndarray
    """(F,) int32 original face index of each triangle in tree order."""
    depth: int
    """Number of levels (a traversal stack of 2 * depth entries suffices)."""

    @classmethod
    def build(cls, vertices: np.ndarray, faces: np.ndarray, leaf_size: int = 4) -> BVH:
        """Build the tree of a mesh: ``vertices`` (V, 3), ``faces`` (F, 3) integer, F >= 1."""
        v = np.ascontiguousarray(vertices, dtype=np.float64)
        f = np.ascontiguousarray(faces, dtype=np.int64)
        if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
            raise ValueError(f"BVH.build needs vertices (V, 3) and faces (F>=1, 3), got {v.shape} and {f.shape}")
        if f.min() < 0 or f.max() >= len(v):
            raise ValueError(f"BVH.build: face indices must be in [0, {len(v)}), got {f.min()}..{f.max()}")
        tri = v[f]
        lo, hi, child, start, count, order, n_nodes, depth = _build(
            tri.min(axis=1), tri.max(axis=1), tri.mean(axis=1), int(leaf_size), N_BINS)
        return cls(lo[:n_nodes].copy(), hi[:n_nodes].copy(), child[:n_nodes].copy(), start[:n_nodes].copy(),
                   count[:n_nodes].copy(), np.ascontiguousarray(tri[order]), order, int(depth))

    @property
    def stack_size(self) -> int:
        return 2 * self.depth + 4

    def nearest_distance(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unsigned distance (N,) float64 from ``points`` (N, 3) to the mesh, and the nearest face (N,) int32."""
        p = np.ascontiguousarray(points, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != 3:
            raise ValueError(f"points must be (N, 3), got {p.shape}")
        d2 = np.empty(len(p))
        face = np.empty(len(p), np.int32)
        with launch(len(p), 1 << 14, 4):
            _nearest_many(self.lo, self.hi, self.child, self.start, self.count, self.tris, p, self.stack_size, d2, face)
        return np.sqrt(d2), self.order[face]


@njit(cache=True, nogil=True, error_model="numpy")
def _surface(lo: np.ndarray, hi: np.ndarray) -> float:
    dx, dy, dz = hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]
    return dx * dy + dy * dz + dz * dx


@njit(cache=True, nogil=True, error_model="numpy")
def _build(tlo: np.ndarray, thi: np.ndarray, cen: np.ndarray, leaf_size: int, n_bins: int):
    """Top-down binned-SAH build; returns padded node arrays, the triangle order, node count and depth."""
    nf = cen.shape[0]
    m = 2 * nf
    lo = np.empty((m, 3))
    hi = np.empty((m, 3))
    child = np.full(m, -1, np.int32)
    start = np.zeros(m, np.int32)
    count = np.zeros(m, np.int32)
    level = np.zeros(m, np.int32)
    order = np.arange(nf).astype(np.int32)
    st_node, st_b, st_e = np.empty(m, np.int64), np.empty(m, np.int64), np.empty(m, np.int64)
    bin_lo, bin_hi = np.empty((n_bins, 3)), np.empty((n_bins, 3))
    bin_n = np.zeros(n_bins, np.int64)
    right_area = np.empty(n_bins)
    right_n = np.empty(n_bins, np.int64)
    acc_lo, acc_hi = np.empty(3), np.empty(3)
    clo, chi = np.empty(3), np.empty(3)
    st_node[0], st_b[0], st_e[0] = 0, 0, nf
    sp, n_nodes, depth = 1, 1, 1
    while sp > 0:
        sp -= 1
        node, b, e = st_node[sp], st_b[sp], st_e[sp]
        depth = max(depth, level[node] + 1)
        lo[node], hi[node] = np.inf, -np.inf
        clo[:], chi[:] = np.inf, -np.inf
        for i in range(b, e):
            t = order[i]
            for k in range(3):
                lo[node, k] = min(lo[node, k], tlo[t, k])
                hi[node, k] = max(hi[node, k], thi[t, k])
                clo[k] = min(clo[k], cen[t, k])
                chi[k] = max(chi[k], cen[t, k])
        n = e - b
        if n <= leaf_size:
            start[node], count[node] = b, n
            continue
        best_cost, best_axis, best_split = np.inf, -1, -1
        for axis in range(3):
            ext = chi[axis] - clo[axis]
            if ext <= 0.0:
                continue
            bin_lo[:], bin_hi[:], bin_n[:] = np.inf, -np.inf, 0
            for i in range(b, e):
                t = order[i]
                j = min(int((cen[t, axis] - clo[axis]) / ext * n_bins), n_bins - 1)
                bin_n[j] += 1
                for k in range(3):
                    bin_lo[j, k] = min(bin_lo[j, k], tlo[t, k])
                    bin_hi[j, k] = max(bin_hi[j, k], thi[t, k])
            acc_lo[:], acc_hi[:] = np.inf, -np.inf
            cnt = 0
            for j in range(n_bins - 1, 0, -1):  # right side of split j: bins j..end
                cnt += bin_n[j]
                for k in range(3):
                    acc_lo[k] = min(acc_lo[k], bin_lo[j, k])
                    acc_hi[k] = max(acc_hi[k], bin_hi[j, k])
                right_n[j] = cnt
                right_area[j] = _surface(acc_lo, acc_hi) if cnt > 0 else 0.0
            acc_lo[:], acc_hi[:] = np.inf, -np.inf
            cnt = 0
            for j in range(1, n_bins):  # left side: bins 0..j-1
                cnt += bin_n[j - 1]
                for k in range(3):
                    acc_lo[k] = min(acc_lo[k], bin_lo[j - 1, k])
                    acc_hi[k] = max(acc_hi[k], bin_hi[j - 1, k])
                if cnt == 0 or right_n[j] == 0:
                    continue
                cost = _surface(acc_lo, acc_hi) * cnt + right_area[j] * right_n[j]
                if cost < best_cost:
                    best_cost, best_axis, best_split = cost, axis, j
        mid = (b + e) // 2
        if best_axis >= 0:  # partition order[b:e] by bin < best_split
            ext = chi[best_axis] - clo[best_axis]
            i, j = b, e - 1
            while i <= j:
                t = order[i]
                if min(int((cen[t, best_axis] - clo[best_axis]) / ext * n_bins), n_bins - 1) < best_split:
                    i += 1
                else:
                    order[i], order[j] = order[j], order[i]
                    j -= 1
            if b < i < e:
                mid = i
        c = n_nodes
        n_nodes += 2
        child[node] = c
        level[c] = level[c + 1] = level[node] + 1
        st_node[sp], st_b[sp], st_e[sp] = c + 1, mid, e
        st_node[sp + 1], st_b[sp + 1], st_e[sp + 1] = c, b, mid
        sp += 2
    return lo, hi, child, start, count, order, n_nodes, depth


@njit(cache=True, nogil=True, error_model="numpy")
def _nearest(lo: np.ndarray, hi: np.ndarray, child: np.ndarray, start: np.ndarray, count: np.ndarray,
             tris: np.ndarray, px: float, py: float, pz: float, best: float, stack: np.ndarray) -> tuple[float, int]:
    """Squared distance to the nearest triangle closer than sqrt(best) and its tree-order index (-1 if none)."""
    best_i = -1
    stack[0] = 0
    sp = 1
    while sp > 0:
        sp -= 1
        n = stack[sp]
        if box_d2(px, py, pz, lo[n], hi[n]) >= best:
            continue
        c = child[n]
        if c < 0:
            for i in range(start[n], start[n] + count[n]):
                d = tri_closest_d2(px, py, pz, tris[i, 0], tris[i, 1], tris[i, 2])
                if d < best:
                    best, best_i = d, i
            continue
        d0 = box_d2(px, py, pz, lo[c], hi[c])
        d1 = box_d2(px, py, pz, lo[c + 1], hi[c + 1])
        near, far, dn, df = (c, c + 1, d0, d1) if d0 <= d1 else (c + 1, c, d1, d0)
        if df < best:
            stack[sp] = far
            sp += 1
        if dn < best:
            stack[sp] = near
            sp += 1
    return best, best_i


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def _nearest_many(lo: np.ndarray, hi: np.ndarray, child: np.ndarray, start: np.ndarray, count: np.ndarray,
                  tris: np.ndarray, points: np.ndarray, stack_size: int, out_d2: np.ndarray,
                  out_face: np.ndarray) -> None:
    n = points.shape[0]
    chunk = 256
    for ci in prange((n + chunk - 1) // chunk):
        stack = np.empty(stack_size, np.int64)
        for q in range(ci * chunk, min(n, (ci + 1) * chunk)):
            d2, i = _nearest(lo, hi, child, start, count, tris, points[q, 0], points[q, 1], points[q, 2],
                             np.inf, stack)
            out_d2[q], out_face[q] = d2, i
