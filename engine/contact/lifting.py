"""Contact lifting: hand vertices that overlap the object in the image -> 3D target points on the object.

The paper's stage-1 contact term: a candidate hand vertex (finger pad, palm) that
projects inside the object's mask is pulled to where the camera ray through it
meets the object. A ray usually meets the object twice or more (front and back
surface); the hit whose surface normal faces the hand vertex is the one the hand
can touch (object normal opposed to the hand's outward normal, ``n_obj . n_hand <
0``): a vertex in front of the object facing away from the camera touches the front
surface, one behind it facing the camera touches the back. Among those hits the
nearest to the vertex is kept if it lies within ``max_distance`` of the vertex.

All hits lie on the ray through the vertex, so a hit at ray parameter ``t`` is
``|t - |v||`` from the vertex ``v``: rays are cast only over ``|v| +- max_distance``.

Frames: hand vertices, normals, targets and target normals are in the camera frame
(OpenCV); the ray caster is built on the mesh in the object frame, its faces wound
outwards; ``T_cam_obj`` (4, 4) maps object to camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from inscene.kernels import RayCaster, project

MAX_CANDIDATES = 250


@dataclass(frozen=True)
class LiftedContacts:
    """The candidates that got a target on the object (M of them), camera frame."""

    index: np.ndarray
    """(M,) int64 positions in the ``candidates`` array given to :func:`lift_contacts`."""
    vertex: np.ndarray
    """(M,) int64 hand vertex ids."""
    target: np.ndarray
    """(M, 3) float64 points on the object surface, metres."""
    normal: np.ndarray
    """(M, 3) float64 unit outward object surface normal at the targets."""

    def __len__(self) -> int:
        return len(self.index)


def _check(name: str, a: np.ndarray, shape: tuple, hint: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, a.shape)):
        raise ValueError(f"lift_contacts: {name} must have shape {hint}, got {a.shape}")
    return a


def in_mask(uv: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N,) bool: pixel coordinates ``uv`` (N, 2) fall on a True pixel of ``mask`` (H, W) (nearest pixel centre)."""
    px = np.floor(uv + 0.5)
    ok = np.isfinite(px).all(axis=1)
    h, w = mask.shape
    ok &= (px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h)
    out = np.zeros(len(uv), bool)
    ij = px[ok].astype(np.int64)
    out[ok] = mask[ij[:, 1], ij[:, 0]]
    return out


def lift_contacts(vertices: np.ndarray, normals: np.ndarray, candidates: np.ndarray, K: np.ndarray,
                  T_cam_obj: np.ndarray, caster: RayCaster, mask: np.ndarray | None = None,
                  max_distance: float = 0.03) -> LiftedContacts:
    """Lift candidate hand vertices onto the object surface along their camera rays.

    Args:
        vertices: (V, 3) posed hand vertices, camera frame.
        normals: (V, 3) unit outward hand vertex normals, camera frame.
        candidates: (C,) vertex ids to try (e.g. :func:`contact_candidates`).
        K: (3, 3) intrinsics. T_cam_obj: (4, 4) object pose.
        caster: a :class:`RayCaster` on the object mesh in the object frame.
        mask: (H, W) bool object mask (segmenter); None: the object's own silhouette,
            i.e. a vertex overlaps the object when its camera ray hits the mesh.
        max_distance: largest vertex-to-target distance kept, metres
            (``ContactConfig.lift_radius``).
    Returns:
        :class:`LiftedContacts` of the M candidates that got a target, in candidate order.
    """
    vertices = _check("vertices", vertices, (None, 3), "(V, 3)").astype(np.float64)
    normals = _check("normals", normals, vertices.shape, f"(V, 3) like vertices {vertices.shape}")
    cand = _check("candidates", candidates, (None,), "(C,)").astype(np.int64)
    K = _check("K", K, (3, 3), "(3, 3)").astype(np.float64)
    T = _check("T_cam_obj", T_cam_obj, (4, 4), "(4, 4)").astype(np.float64)
    if mask is not None:
        mask = _check("mask", mask, (None, None), "(H, W)").astype(bool, copy=False)
    if len(cand) and (cand.min() < 0 or cand.max() >= len(vertices)):
        raise ValueError(f"lift_contacts: candidates must be vertex ids in [0, {len(vertices)}), "
                         f"got [{cand.min()}, {cand.max()}]")
    v, n = vertices[cand], np.asarray(normals, dtype=np.float64)[cand]
    depth = np.linalg.norm(v, axis=1)
    keep = (v[:, 2] > 1e-6) & np.isfinite(v).all(axis=1)
    if mask is not None:
        keep[keep] = in_mask(project(v[keep], K), mask)
    idx = np.flatnonzero(keep)
    empty = LiftedContacts(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3)), np.zeros((0, 3)))
    if len(idx) == 0:
        return empty
    d = v[idx] / depth[idx, None]  # unit camera rays through the vertices
    start = np.maximum(depth[idx] - max_distance, 0.0)
    R, t = T[:3, :3], T[:3, 3]
    origins = (d * start[:, None] - t) @ R  # R^T (p - t), object frame
    hits = caster.cast(origins, d @ R, t_max=2.0 * max_distance)
    n_cam = hits.normal @ R.T  # (N, H, 3)
    along = start[:, None] + hits.t  # ray parameter from the camera centre
    gap = np.abs(along - depth[idx, None])
    facing = np.einsum("nhx,nx->nh", n_cam, n[idx]) < 0.0
    ok = (hits.face >= 0) & facing & (gap <= max_distance)
    gap = np.where(ok, gap, np.inf)
    best = np.argmin(gap, axis=1)
    rows = np.flatnonzero(ok[np.arange(len(idx)), best])
    if len(rows) == 0:
        return empty
    pick = best[rows]
    sel = idx[rows]
    target = d[rows] * along[rows, pick][:, None]
    return LiftedContacts(sel, cand[sel], target, n_cam[rows, pick])


def _contact_regions(model) -> list[str]:
    """The model's regions that may touch an object: the finger pads, then the palm."""
    return [k for k in model.regions if k.endswith("_pad")] + (["palm"] if "palm" in model.regions else [])


def contact_candidates(model, max_count: int = MAX_CANDIDATES) -> np.ndarray:
    """Vertex ids that may touch an object: the five finger pads and the palm (``model.regions``).

    If there are more than ``max_count``, they are thinned evenly over the rest
    surface by farthest-point sampling on the rest vertices (deterministic, starting
    from the first id), so every region keeps vertices in proportion to its area.
    anny's regions hold 146 vertices, all kept.

    Returns:
        (C,) sorted int64 vertex ids, C <= max_count.
    """
    names = _contact_regions(model)
    if not names:
        raise ValueError(f"contact_candidates: the {model.name} hand has no finger-pad or palm regions")
    ids = np.unique(np.concatenate([np.asarray(model.regions[k], dtype=np.int64) for k in names]))
    if len(ids) <= max_count:
        return ids
    rest = np.asarray(model.v_template.detach().cpu().numpy(), dtype=np.float64)[ids]
    chosen = np.zeros(max_count, np.int64)
    dist = np.full(len(ids), np.inf)
    for k in range(1, max_count):  # farthest-point sampling: O(max_count * C), once per model
        dist = np.minimum(dist, np.linalg.norm(rest - rest[chosen[k - 1]], axis=1))
        chosen[k] = int(np.argmax(dist))
    return np.sort(ids[chosen])


def candidate_regions(model, candidates: np.ndarray) -> np.ndarray:
    """(C,) int: the region of each candidate vertex, numbered in the order of :func:`contact_candidates`'s regions
    (a vertex in two regions takes the first)."""
    out = np.full(len(candidates), -1, np.int64)
    for r, k in reversed(list(enumerate(_contact_regions(model)))):
        out[np.isin(candidates, np.asarray(model.regions[k], dtype=np.int64))] = r
    if (out < 0).any():
        raise ValueError("candidate_regions: some candidates are in no finger-pad or palm region")
    return out
