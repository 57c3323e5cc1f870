"""Distances to the object: a cached SDF grid for optimization, exact distances for the ground truth.

The grid (``inscene.kernels.sdf_grid``, trilinear, with gradients) drives the grasp
optimization; every figure the ground truth reports (contact distances,
penetration depths, contact labels) uses exact distances instead: the nearest
triangle through the kernels' BVH, signed by the generalized winding number.
"""

from __future__ import annotations

import numpy as np

from inscene.kernels import BVH, RayCaster, sdf_grid, winding_number

EXACT_BAND = 0.012
"""Points whose grid distance is below this (metres) get exact distances; the others keep the grid's."""


class ObjectGeometry:
    """Distance queries against one object mesh in its own frame."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, resolution: int = 96, cache: bool = False) -> None:
        """``cache``: keep the SDF grid in the on-disk kernel cache (for fixed meshes such as scans; a
        procedural object differs with every seed and would only fill the cache)."""
        self.vertices = np.ascontiguousarray(vertices, np.float64)
        self.faces = np.ascontiguousarray(faces, np.int64)
        self.grid = sdf_grid((self.vertices, self.faces), resolution=resolution, cache=cache)
        self.bvh = BVH.build(self.vertices, self.faces)
        self.caster = RayCaster((self.vertices, self.faces))

    def grid_distance(self, points: np.ndarray) -> np.ndarray:
        """(...,) signed grid distance at (..., 3) points, metres (negative inside)."""
        return self.grid.lookup(points, gradient=False)[0]

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        """(N,) exact signed distance at (N, 3) points within :data:`EXACT_BAND` of the surface, grid elsewhere."""
        p = np.ascontiguousarray(points, np.float64).reshape(-1, 3)
        d = self.grid_distance(p).astype(np.float64)
        near = np.abs(d) < EXACT_BAND
        if near.any():
            q = p[near]
            dist, _ = self.bvh.nearest_distance(q)
            inside = np.abs(winding_number(self.bvh, q)) > 0.5
            d[near] = np.where(inside, -dist, dist)
        return d

    def closest_points(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) nearest points on the surface to (N, 3) points (exact)."""
        p = np.ascontiguousarray(points, np.float64).reshape(-1, 3)
        if len(p) == 0:
            return p.copy()
        _, face = self.bvh.nearest_distance(p)
        tri = self.vertices[self.faces[face]]
        return closest_on_triangles(p, tri[:, 0], tri[:, 1], tri[:, 2])

    def first_hit(self, origin: np.ndarray, direction: np.ndarray) -> np.ndarray | None:
        """The first surface point along a ray (3,), or None."""
        hits = self.caster.cast(origin[None], direction[None], max_hits=4)
        if hits.count[0] == 0:
            return None
        return hits.points(origin[None], direction[None])[0, 0]


def closest_on_triangles(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(N, 3) closest points to p on triangles (a, b, c), all (N, 3) (Ericson, Real-Time Collision Detection 5.1.5)."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = (ab * ap).sum(1), (ac * ap).sum(1)
    bp = p - b
    d3, d4 = (ab * bp).sum(1), (ac * bp).sum(1)
    cp = p - c
    d5, d6 = (ab * cp).sum(1), (ac * cp).sum(1)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    denom = va + vb + vc
    safe = np.where(np.abs(denom) > 1e-300, denom, 1.0)
    v, w = vb / safe, vc / safe
    out = a + ab * v[:, None] + ac * w[:, None]  # interior
    eps = 1e-300

    def edge(mask: np.ndarray, start: np.ndarray, vec: np.ndarray, t: np.ndarray) -> None:
        out[mask] = start[mask] + vec[mask] * t[mask, None]

    bc = c - b
    m_bc = (va <= 0) & ((d4 - d3) >= 0) & ((d5 - d6) >= 0)
    edge(m_bc, b, bc, (d4 - d3) / np.maximum((d4 - d3) + (d5 - d6), eps))
    m_ac = (vb <= 0) & (d2 >= 0) & (d6 <= 0)
    edge(m_ac, a, ac, d2 / np.where(np.abs(d2 - d6) > eps, d2 - d6, 1.0))
    m_ab = (vc <= 0) & (d1 >= 0) & (d3 <= 0)
    edge(m_ab, a, ab, d1 / np.where(np.abs(d1 - d3) > eps, d1 - d3, 1.0))
    m_c = (d6 >= 0) & (d5 <= d6)
    out[m_c] = c[m_c]
    m_b = (d3 >= 0) & (d4 <= d3)
    out[m_b] = b[m_b]
    m_a = (d1 <= 0) & (d2 <= 0)
    out[m_a] = a[m_a]
    return out
