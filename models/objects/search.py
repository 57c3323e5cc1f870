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

Coarse to fine (``SearchConfig.coarse``, on): the views of one icosphere level less
and every other in-plane angle are scored first (1/8 of the rotations), then the full
grid only within ~25 deg and one angle step of the best ``seeds`` of those; the best
of both sets are returned. About a fifth of the rotations of the full grid, with all
pairs fitted and scored at once (starting from a box on the coffee clip, search and
refinement: 0.9 -> 0.56 s, ``inscene bench object --clip``; ``tests/test_object_tracker.py``
compares it with the full grid and the per-view loop).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inscene.kernels.regions import Lines, line_agreement

from .viewpoints import ViewpointModel, sphere_directions


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
    coarse: bool = True
    """Search a coarser grid first (the views of one icosphere level less, every other in-plane angle), then the
    full grid only around its best ``seeds`` (about a sixth of the rotations; False: every rotation)."""
    seeds: int = 48
    """Coarse hypotheses whose neighbourhoods are searched on the full grid."""


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


def _view_rotations(directions: np.ndarray) -> np.ndarray:
    """``(V, 3, 3)`` rotations (object -> view camera) of :func:`~.viewpoints.look_at` for ``directions`` (V, 3)."""
    z = -directions / np.linalg.norm(directions, axis=1, keepdims=True)
    up = np.where((np.abs(z[:, 2]) < 0.9)[:, None], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0])
    x = np.cross(up, z)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.stack([x, np.cross(z, x), z], axis=1)


def box_fit(ext_w: np.ndarray, ext_h: np.ndarray, bw: float, bh: float) -> tuple[np.ndarray, np.ndarray]:
    """For object extents (metres, camera axes) ``ext_w``, ``ext_h``: the pixels-per-metre ``k`` that fits them to a
    ``bw`` x ``bh`` box (least squares over width and height) and the box IoU of the fitted extent."""
    k = (ext_w * bw + ext_h * bh) / (ext_w ** 2 + ext_h ** 2)
    iw, ih = np.minimum(k * ext_w, bw), np.minimum(k * ext_h, bh)
    return k, iw * ih / (k * k * ext_w * ext_h + bw * bh - iw * ih)


def centre_in_box(pts: np.ndarray, R: np.ndarray, t: np.ndarray, K: np.ndarray,
                  box: tuple[float, float, float, float]) -> None:
    """Move translations ``t`` (k, 3) in place so the projections of ``pts`` (k, p, 3) (or (p, 3) for all) under
    ``(R, t)`` are centred on ``box`` = (uc, vc, w, h) and as large: two fixed-point steps."""
    uc, vc, bw, bh = box
    for _ in range(2):
        Xc = pts @ R.transpose(0, 2, 1) + t[:, None]
        u = K[0, 0] * Xc[..., 0] / Xc[..., 2] + K[0, 2]
        w = K[1, 1] * Xc[..., 1] / Xc[..., 2] + K[1, 2]
        t[:, 0] += (uc - 0.5 * (u.max(1) + u.min(1))) * t[:, 2] / K[0, 0]
        t[:, 1] += (vc - 0.5 * (w.max(1) + w.min(1))) * t[:, 2] / K[1, 1]
        t *= np.sqrt(((u.max(1) - u.min(1)) * (w.max(1) - w.min(1))) / (bw * bh))[:, None]


def _fit_pairs(model: ViewpointModel, views: np.ndarray, angles: np.ndarray, step: int, K: np.ndarray,
               min_iou: float, box: tuple[float, float, float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rotations (view ``views[i]`` turned in-plane by ``angles[i]``) whose extent fits ``box`` = (uc, vc, w, h)
    (centre and size): rotations ``(k, 3, 3)``, translations ``(k, 3)`` (depth from the apparent size, centred on
    the box) and the indices ``(k,)`` of the pairs kept. All pairs at once."""
    uc, vc, bw, bh = box
    f = 0.5 * (K[0, 0] + K[1, 1])
    Rv = _view_rotations(model.directions[views])  # (N, 3, 3)
    Rz = _rotz(angles)
    R = Rz @ Rv  # object -> camera rotation
    pts = model.points[views, ::step]  # (N, p, 3)
    P = (pts - model.center) @ R.transpose(0, 2, 1)  # camera axes, about the centre
    k, iou = box_fit(P[..., 0].max(1) - P[..., 0].min(1), P[..., 1].max(1) - P[..., 1].min(1), bw, bh)
    keep = np.nonzero(iou >= min_iou)[0]
    R = R[keep]
    # the centre on the ray through the box centre, then shifted and scaled so the projected extent fits the box
    ray = np.linalg.solve(K, np.array([uc, vc, 1.0]))
    t = (f / k[keep])[:, None] * ray[None] - R @ model.center
    centre_in_box(pts[keep], R, t, K, box)
    return R, t, keep


def coarse_spacing_deg(subdivisions: int) -> float:
    """Typical angle between neighbouring directions of an icosphere of level ``subdivisions`` (~63 deg / 2^s)."""
    return 63.4 / 2 ** subdivisions


def _score(model: ViewpointModel, K: np.ndarray, R: np.ndarray, t: np.ndarray, v: np.ndarray, step: int, f: float,
           band: float, image: np.ndarray, prob: np.ndarray, occlusion: np.ndarray | None) -> np.ndarray:
    """Contour agreement of each hypothesis ``(R[i], t[i])`` (view ``v[i]``'s contour) with ``prob``."""
    if not len(R):
        return np.zeros(0)
    Xc = model.points[v, ::step] @ R.transpose(0, 2, 1) + t[:, None]
    Nc = model.normals[v, ::step] @ R.transpose(0, 2, 1)
    uv = np.stack([K[0, 0] * Xc[..., 0] / Xc[..., 2] + K[0, 2], K[1, 1] * Xc[..., 1] / Xc[..., 2] + K[1, 2]], -1)
    n2 = Nc[..., :2] / np.maximum(np.linalg.norm(Nc[..., :2], axis=-1, keepdims=True), 1e-12)
    px = f / Xc[..., 2]
    fgl = np.minimum(model.fg_dist[v, ::step] * px, band).reshape(-1)
    bgl = np.minimum(model.bg_dist[v, ::step] * px, band).reshape(-1)
    lines = Lines(uv.reshape(-1, 2), n2.reshape(-1, 2), np.zeros(len(fgl)))
    a, ok = line_agreement(image, lines, fgl, bgl, prob=prob, occlusion=occlusion)
    p = len(a) // len(R)
    a, ok = a.reshape(-1, p), ok.reshape(-1, p)
    frac = ok.mean(1)
    # mean agreement of the lines that saw the image, discounted when fewer than 60 % did
    mean = np.where(ok, a, 0.0).sum(1) / np.maximum(ok.sum(1), 1)
    return np.where(frac > 0.3, mean, -1.0) * np.minimum(frac / 0.6, 1)


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
    step = max(1, model.n_points // c.points)
    band = max(3.0, c.band * np.sqrt(bw * bh))
    n_ang = c.inplane_steps
    fine_views = search_views(model, c.subdivisions)

    def grid(views: np.ndarray, angle_steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.repeat(views, len(angle_steps)), np.tile(angle_steps, len(views))

    def scored(views: np.ndarray, ang: np.ndarray):
        """(R, t, view, angle step, score) of the (view, angle-step) pairs that fit the box."""
        Rs, ts, vs, As = [], [], [], []
        for sc in c.scales:
            R, t, keep = _fit_pairs(model, views, ang * (2 * np.pi / n_ang), step, K, c.min_box_iou,
                                    (uc, vc, sc * bw, sc * bh))
            Rs.append(R), ts.append(t), vs.append(views[keep]), As.append(ang[keep])
        R, t, v, a = np.concatenate(Rs), np.concatenate(ts), np.concatenate(vs), np.concatenate(As)
        return R, t, v, a, _score(model, K, R, t, v, step, f, band, image, prob, occlusion)

    if c.coarse and c.subdivisions > 1 and n_ang % 2 == 0:
        # every other angle on one icosphere level less, then the full grid around the best of those
        coarse_views = search_views(model, c.subdivisions - 1)
        R, t, v, a, score = scored(*grid(coarse_views, np.arange(0, n_ang, 2)))
        seeds = np.argsort(-score)[:c.seeds]
        seeds = seeds[score[seeds] > 0]
        near = np.cos(np.radians(1.6 * coarse_spacing_deg(c.subdivisions - 1)))
        si, fi = np.nonzero(model.directions[v[seeds]] @ model.directions[fine_views].T >= near)
        # each seed's nearby fine views at its angle and the two beside it, every (view, angle) once
        codes = np.unique(np.concatenate([fine_views[fi] * n_ang + (a[seeds][si] + da) % n_ang for da in (-1, 0, 1)]))
        R2, t2, _, _, score2 = scored(codes // n_ang, codes % n_ang)
        R, t, score = np.concatenate([R, R2]), np.concatenate([t, t2]), np.concatenate([score, score2])
    else:
        R, t, _, _, score = scored(*grid(fine_views, np.arange(n_ang)))
    if not len(R):
        return []
    out: list[Hypothesis] = []
    for i in np.argsort(-score):
        if len(out) >= c.top_k or score[i] <= 0:
            break
        if all(rotation_angle(R[i], h.T_cam_obj[:3, :3]) >= c.min_separation_deg for h in out):
            T = np.eye(4)
            T[:3, :3], T[:3, 3] = R[i], t[i]
            out.append(Hypothesis(T, float(score[i])))
    return out
