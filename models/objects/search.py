"""Pose hypotheses from a 2D box: silhouette search over the viewpoint model, depth from apparent size.

Every searched view (a subset of the viewpoint model's views) is turned in the
image plane in ``inplane_steps`` steps; each (view, angle) is one rotation. Its
contour points, seen along the optical axis, have a 2D extent; the depth that
makes that extent match the box (least squares over width and height) gives the
translation, the box centre the direction. Rotations whose extent has the wrong
shape (box IoU below ``min_box_iou``) are dropped, the rest are scored by the
colour agreement of their contour lines with a foreground probability image
(:func:`inscene.kernels.regions.line_agreement`), and the best distinct ones are
returned for refinement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inscene.kernels.regions import Lines, line_agreement

from .viewpoints import ViewpointModel, look_at, sphere_directions


@dataclass(frozen=True)
class SearchConfig:
    """Settings of the silhouette search."""

    subdivisions: int = 3
    """Views searched: the model views nearest to an icosphere of this level (642 for 3)."""
    inplane_steps: int = 36
    """In-plane rotations per view (10 degrees apart)."""
    points: int = 100
    """Contour points per hypothesis used for scoring."""
    min_box_iou: float = 0.7
    """Hypotheses whose extent fits the box worse than this are not scored."""
    scales: tuple[float, ...] = (1.0,)
    """Box sizes tried, relative to the given box (e.g. (0.8, 1, 1.25) when the box may be cut by an occluder)."""
    band: float = 0.08
    """Pixels each side of the contour scored, as a fraction of the box's size (at least 3)."""
    top_k: int = 8
    """Best hypotheses returned."""
    min_separation_deg: float = 12.0
    """Returned hypotheses differ at least this much in rotation."""


@dataclass(frozen=True)
class Hypothesis:
    T_cam_obj: np.ndarray
    """(4, 4) pose."""
    score: float
    """Contour agreement with the probability image."""


def _rotz(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    R = np.zeros((len(a), 3, 3))
    R[:, 0, 0], R[:, 0, 1], R[:, 1, 0], R[:, 1, 1], R[:, 2, 2] = c, -s, s, c, 1.0
    return R


def rotation_angle(Ra: np.ndarray, Rb: np.ndarray) -> float:
    """Angle in degrees between two rotations (3, 3)."""
    c = (np.trace(Ra @ Rb.T) - 1) / 2
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def search_views(model: ViewpointModel, subdivisions: int) -> np.ndarray:
    """Indices of the model views nearest to the directions of an icosphere of level ``subdivisions``."""
    d = sphere_directions(subdivisions)
    return np.unique(np.argmax(d @ model.directions.T, axis=1))


def _fit_box(model: ViewpointModel, v: int, Rz: np.ndarray, step: int, K: np.ndarray, min_iou: float,
             box: tuple[float, float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Rotations ``(k, 3, 3)`` (view ``v`` turned in-plane by ``Rz``) whose extent fits ``box`` = (uc, vc, w, h)
    (centre and size) and their translations ``(k, 3)``: depth from the apparent size, centred on the box."""
    uc, vc, bw, bh = box
    f = 0.5 * (K[0, 0] + K[1, 1])
    Tv = look_at(model.directions[v], model.center, model.distance)
    P = (model.points[v, ::step] - model.center) @ Tv[:3, :3].T  # view-camera axes, about the centre
    Pr = P[None] @ Rz.transpose(0, 2, 1)  # (A, p, 3)
    ext_w = Pr[..., 0].max(1) - Pr[..., 0].min(1)
    ext_h = Pr[..., 1].max(1) - Pr[..., 1].min(1)
    k = (ext_w * bw + ext_h * bh) / (ext_w ** 2 + ext_h ** 2)
    iw, ih = np.minimum(k * ext_w, bw), np.minimum(k * ext_h, bh)
    iou = iw * ih / (k * k * ext_w * ext_h + bw * bh - iw * ih)
    keep = np.nonzero(iou >= min_iou)[0]
    R = Rz[keep] @ Tv[:3, :3]  # object -> camera rotation
    # the centre on the ray through the box centre, then shifted and scaled so the projected extent fits the box
    ray = np.linalg.solve(K, np.array([uc, vc, 1.0]))
    t = (f / k[keep])[:, None] * ray[None] - R @ model.center
    pts = model.points[v, ::step]
    for _ in range(2):
        Xc = pts[None] @ R.transpose(0, 2, 1) + t[:, None]
        u = K[0, 0] * Xc[..., 0] / Xc[..., 2] + K[0, 2]
        w = K[1, 1] * Xc[..., 1] / Xc[..., 2] + K[1, 2]
        t[:, 0] += (uc - 0.5 * (u.max(1) + u.min(1))) * t[:, 2] / K[0, 0]
        t[:, 1] += (vc - 0.5 * (w.max(1) + w.min(1))) * t[:, 2] / K[1, 1]
        t *= np.sqrt(((u.max(1) - u.min(1)) * (w.max(1) - w.min(1))) / (bw * bh))[:, None]
    return R, t


def box_hypotheses(model: ViewpointModel, K: np.ndarray, box: tuple[float, float, float, float],
                   prob: np.ndarray, image: np.ndarray, config: SearchConfig | None = None,
                   occlusion: np.ndarray | None = None) -> list[Hypothesis]:
    """The best poses for an object inside ``box = (x, y, w, h)`` (pixels) given ``prob`` (H, W) foreground
    posteriors; ``image`` (H, W, 3) uint8 is only checked for shape. Best first."""
    c = config or SearchConfig()
    K = np.asarray(K, dtype=np.float64)
    x0, y0, bw, bh = (float(v) for v in box)
    uc, vc = x0 + (bw - 1) / 2, y0 + (bh - 1) / 2
    f = 0.5 * (K[0, 0] + K[1, 1])
    views = search_views(model, c.subdivisions)
    step = max(1, model.n_points // c.points)
    Rz = _rotz(np.arange(c.inplane_steps) * (2 * np.pi / c.inplane_steps))
    band = max(3.0, c.band * np.sqrt(bw * bh))
    rots, trans, centers, normals, fgl, bgl = [], [], [], [], [], []
    for s in c.scales:
        for v in views:
            R, t = _fit_box(model, v, Rz, step, K, c.min_box_iou, (uc, vc, s * bw, s * bh))
            if len(R) == 0:
                continue
            Xc = model.points[v, ::step][None] @ R.transpose(0, 2, 1) + t[:, None]
            Nc = model.normals[v, ::step][None] @ R.transpose(0, 2, 1)
            uv = np.stack([K[0, 0] * Xc[..., 0] / Xc[..., 2] + K[0, 2],
                           K[1, 1] * Xc[..., 1] / Xc[..., 2] + K[1, 2]], -1)
            n2 = Nc[..., :2] / np.maximum(np.linalg.norm(Nc[..., :2], axis=-1, keepdims=True), 1e-12)
            px = f / Xc[..., 2]
            rots.append(R)
            trans.append(t)
            centers.append(uv.reshape(-1, 2))
            normals.append(n2.reshape(-1, 2))
            fgl.append(np.minimum(model.fg_dist[v, ::step][None] * px, band).reshape(-1))
            bgl.append(np.minimum(model.bg_dist[v, ::step][None] * px, band).reshape(-1))
    if not rots:
        return []
    R, t = np.concatenate(rots), np.concatenate(trans)
    lines = Lines(np.concatenate(centers), np.concatenate(normals), np.zeros(len(np.concatenate(fgl))))
    a, ok = line_agreement(image, lines, np.concatenate(fgl), np.concatenate(bgl), prob=prob, occlusion=occlusion)
    p = len(a) // len(R)
    a, ok = a.reshape(-1, p), ok.reshape(-1, p)
    frac = ok.mean(1)
    # mean agreement of the lines that saw the image, discounted when fewer than 60 % did
    mean = np.where(ok, a, 0.0).sum(1) / np.maximum(ok.sum(1), 1)
    score = np.where(frac > 0.3, mean, -1.0) * np.minimum(frac / 0.6, 1)
    out: list[Hypothesis] = []
    for i in np.argsort(-score):
        if len(out) >= c.top_k or score[i] <= 0:
            break
        if all(rotation_angle(R[i], h.T_cam_obj[:3, :3]) >= c.min_separation_deg for h in out):
            T = np.eye(4)
            T[:3, :3], T[:3, 3] = R[i], t[i]
            out.append(Hypothesis(T, float(score[i])))
    return out
