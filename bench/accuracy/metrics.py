"""Accuracy metrics of hand(-object) reconstructions against the synthetic ground truth: pure numpy functions.

Conventions: T frames, 21 keypoints in MediaPipe order (0 = wrist), camera frame,
metres in and (where a name says so) millimetres out. A frame a function should
ignore is masked out by the caller (:func:`scored_frames`) or carries NaN.

* :func:`scored_frames` -- which frames count: the ground-truth hand is valid and
  visible (``visible_fraction`` > 0.3, as ``inscene demo``) and the estimate is valid.
* :func:`mrpe` -- wrist position error per frame (camera frame).
* :func:`mpjpe_rel` -- root-relative mean per-joint position error per frame.
* :func:`penetration_depth` -- per frame, the depth of the deepest hand vertex inside the
  object (object SDF at the vertices mapped into the object frame).
* :func:`penetration_volume` -- the volume of the hand inside the object (lattice samples
  of the hand's bounding box inside the object's SDF and inside the hand's mesh by the
  generalized winding number).
* :func:`contact_prf` -- precision, recall and F1 of per-frame contact labels.
* :func:`accelerations` / :func:`jitter` -- mean joint acceleration over consecutive frames.
* :func:`summary_stats` / :func:`pool_means` -- summaries and how per-scene figures pool.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_VISIBLE = 0.3
"""A ground-truth hand less visible than this (share of its amodal pixels) is not scored."""


def scored_frames(gt_valid: np.ndarray, gt_visible: np.ndarray, *est_valid: np.ndarray,
                  min_visible: float = MIN_VISIBLE) -> tuple[np.ndarray, np.ndarray]:
    """Frames to score and frames in view.

    Args:
        gt_valid: (T,) bool, the ground-truth hand is in the image.
        gt_visible: (T,) float, visible share of the hand (NaN: not in view).
        est_valid: any number of (T,) bool validity masks of estimates (all must hold).
    Returns:
        ``(scored (T,) bool, in_view (T,) bool)``; coverage = ``scored.sum() / in_view.sum()``.
    """
    in_view = np.asarray(gt_valid, bool) & (np.nan_to_num(np.asarray(gt_visible, float)) > min_visible)
    scored = in_view.copy()
    for v in est_valid:
        scored &= np.asarray(v, bool)
    return scored, in_view


def mrpe(est: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Wrist (keypoint 0) position error per frame, metres: ``est``, ``gt`` (T, 21, 3) -> (T,)."""
    est, gt = _joints(est, gt)
    return np.linalg.norm(est[:, 0] - gt[:, 0], axis=-1)


def mpjpe_rel(est: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Root-relative MPJPE per frame, metres: mean over the 21 joints after subtracting each wrist.

    ``est``, ``gt`` (T, 21, 3) -> (T,).
    """
    est, gt = _joints(est, gt)
    return np.linalg.norm((est - est[:, :1]) - (gt - gt[:, :1]), axis=-1).mean(axis=1)


def _joints(est: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    est, gt = np.asarray(est, np.float64), np.asarray(gt, np.float64)
    if est.shape != gt.shape or est.ndim != 3 or est.shape[-1] != 3:
        raise ValueError(f"joints must be (T, J, 3) of equal shapes, got {est.shape} and {gt.shape}")
    return est, gt


def to_object_frame(points: np.ndarray, T_cam_obj: np.ndarray) -> np.ndarray:
    """Camera-frame points (..., N, 3) into the object frame of the pose(s) ``T_cam_obj`` ((..., 4, 4))."""
    R, t = T_cam_obj[..., :3, :3], T_cam_obj[..., :3, 3]
    return np.einsum("...nj,...jk->...nk", points - t[..., None, :], R)  # R^T (p - t), row vectors


def signed_distances(grid, vertices_obj: np.ndarray) -> np.ndarray:
    """Object SDF (metres, negative inside) at vertices (T, V, 3) in the object frame -> (T, V); NaN rows stay NaN."""
    from inscene.kernels import sdf_lookup

    v = np.asarray(vertices_obj, np.float64)
    out = np.full(v.shape[:2], np.nan)
    ok = np.isfinite(v).all(axis=(1, 2))
    if ok.any():
        d, _ = sdf_lookup(grid, v[ok].reshape(-1, 3), gradient=False)
        out[ok] = d.reshape(int(ok.sum()), v.shape[1])
    return out


def penetration_depth(sdf: np.ndarray) -> np.ndarray:
    """Per frame, the depth of the deepest vertex inside the object, metres (0: none inside).

    ``sdf`` (T, V): signed distance of each hand vertex to the object (negative inside) -> (T,);
    NaN where the frame's distances are unknown.
    """
    sdf = np.asarray(sdf, np.float64)
    out = np.full(len(sdf), np.nan)
    ok = np.isfinite(sdf).all(axis=1)
    out[ok] = np.maximum(0.0, -sdf[ok].min(axis=1))
    return out


def penetration_volume(vertices_obj: np.ndarray, faces: np.ndarray, grid, spacing: float = 0.002) -> float:
    """Volume of the hand mesh inside the object, cubic metres, for one frame.

    Samples the centres of a lattice of step ``spacing`` over the intersection of the
    hand's bounding box with the object grid's box; a sample counts when the object's
    SDF is negative there (trilinear lookup) *and* the hand mesh's generalized winding
    number is above 0.5 (robust to the hand mesh's opening at the wrist). The estimate
    is ``count * spacing**3``: its error is about (surface of the intersection) x
    ``spacing`` / 2 at worst, much less on average.

    Args:
        vertices_obj: (V, 3) the hand's vertices in the object frame, metres.
        faces: (F, 3) the hand mesh's triangles.
        grid: the object's :class:`~inscene.kernels.SDFGrid`.
        spacing: lattice step, metres.
    """
    from inscene.kernels import BVH, sdf_lookup, winding_number

    v = np.asarray(vertices_obj, np.float64)
    if not np.isfinite(v).all():
        return float("nan")
    gb = grid.bounds
    lo, hi = np.maximum(v.min(0), gb[0]), np.minimum(v.max(0), gb[1])
    if np.any(hi <= lo):
        return 0.0
    axes = [lo[k] + spacing * (np.arange(max(int(np.ceil((hi[k] - lo[k]) / spacing)), 1)) + 0.5) for k in range(3)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    d, _ = sdf_lookup(grid, pts, gradient=False)
    cand = pts[d < 0]
    if len(cand) == 0:
        return 0.0
    w = winding_number(BVH.build(v, np.asarray(faces)), cand)
    return float((w > 0.5).sum()) * spacing ** 3


def contact_prf(est: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """Precision, recall and F1 of per-frame contact labels ``est``, ``gt`` (N,) bool (the scored frames).

    An empty class gives 1.0 where nothing could be wrong (no predicted / no true contact
    and none missed), so ground truth against itself scores 1 everywhere.
    """
    est, gt = np.asarray(est, bool), np.asarray(gt, bool)
    tp, fp, fn = int((est & gt).sum()), int((est & ~gt).sum()), int((~est & gt).sum())
    return prf(tp, fp, fn) | {"tn": int((~est & ~gt).sum())}


def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    """Precision, recall, F1 from counts (1.0 for an empty denominator with nothing wrong)."""
    p = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
    r = tp / (tp + fn) if tp + fn else (1.0 if fp == 0 else 0.0)
    f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": p, "recall": r, "f1": f1}


def accelerations(joints: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-joint acceleration magnitudes ``|k[t+1] - 2 k[t] + k[t-1]|``, metres per frame squared.

    ``joints`` (T, J, 3), ``mask`` (T,) bool; only triples of consecutive frames that are all
    in ``mask`` count. Returns (M, J) for the M such triples (centre frames in order).
    """
    k, m = np.asarray(joints, np.float64), np.asarray(mask, bool)
    if len(k) < 3:
        return np.empty((0, k.shape[1] if k.ndim == 3 else 0))
    trip = m[:-2] & m[1:-1] & m[2:]
    acc = k[2:] - 2 * k[1:-1] + k[:-2]
    return np.linalg.norm(acc[trip], axis=-1)


@dataclass(frozen=True)
class Jitter:
    """Mean joint acceleration of an estimate and of the ground truth over the same frame triples."""

    est: float
    """Estimate, metres per frame squared."""
    gt: float
    """Ground truth, metres per frame squared."""
    n: int
    """Frame triples counted."""
    fps: float

    @property
    def ratio(self) -> float:
        return self.est / self.gt if self.gt > 0 else float("nan")

    def as_dict(self) -> dict[str, float]:
        s = self.fps ** 2
        return {"est_m_per_frame2": self.est, "gt_m_per_frame2": self.gt, "est_m_per_s2": self.est * s,
                "gt_m_per_s2": self.gt * s, "ratio": self.ratio, "n": self.n}


def jitter(est: np.ndarray, gt: np.ndarray, mask: np.ndarray, fps: float) -> Jitter:
    """Mean joint acceleration of ``est`` and ``gt`` (T, 21, 3) over triples of consecutive ``mask`` frames."""
    a_est, a_gt = accelerations(est, mask), accelerations(gt, mask)
    n = len(a_est)
    return Jitter(float(a_est.mean()) if n else float("nan"), float(a_gt.mean()) if n else float("nan"), n, fps)


def summary_stats(values_m: np.ndarray, scale: float = 1e3) -> dict[str, float]:
    """Mean, median, p90, max and count of the finite values, times ``scale`` (metres -> mm by default)."""
    v = np.asarray(values_m, np.float64)
    v = v[np.isfinite(v)] * scale
    if v.size == 0:
        return {"mean": float("nan"), "median": float("nan"), "p90": float("nan"), "max": float("nan"), "n": 0}
    return {"mean": float(v.mean()), "median": float(np.median(v)), "p90": float(np.percentile(v, 90)),
            "max": float(v.max()), "n": int(v.size)}


def pool_means(parts: list[dict[str, float]]) -> dict[str, float]:
    """Pool :func:`summary_stats` of several scenes: the count-weighted mean and the largest max.

    (Medians and percentiles do not pool from summaries; the per-scene ones stay in the JSON.)
    """
    parts = [p for p in parts if p.get("n", 0) > 0]
    n = sum(p["n"] for p in parts)
    if n == 0:
        return {"mean": float("nan"), "max": float("nan"), "n": 0}
    return {"mean": sum(p["mean"] * p["n"] for p in parts) / n, "max": max(p["max"] for p in parts), "n": n}
