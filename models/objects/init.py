"""Initialization of the tracker in a frame: from a 2D box, a mask, or colour histograms (re-detection).

1. A foreground probability image: from a mask (``0.95`` inside, ``0.05`` outside),
   or from colour histograms of the box's inside against a ring around it, or
   from the tracker's own histograms (re-detection after a loss).
2. The silhouette search (:mod:`.search`) proposes the best distinct poses.
3. Each is refined by the region tracker (coarse to fine, a few passes), with the
   histograms re-estimated at the current pose between passes (box) or against
   the mask's probability image.
4. The candidates are ranked by the contour's colour agreement; when the mesh
   has a texture, the best few are re-ranked with the normalized cross-correlation
   of a rendering with the image added (it tells apart poses with the same
   silhouette, e.g. front and back).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import binary_dilation, gaussian_filter

from .histograms import ColorHistograms
from .mesh import ObjectMesh
from .search import SearchConfig, box_hypotheses
from .tracker import RegionTracker


@dataclass(frozen=True)
class InitConfig:
    """Settings of the initialization."""

    search: SearchConfig = field(default_factory=lambda: SearchConfig(top_k=24))
    """The silhouette search; its best ``top_k`` hypotheses are refined."""
    passes: int = 4
    """Refinement passes per hypothesis (each a full coarse-to-fine run)."""
    texture_weight: float = 0.5
    """Weight of the rendering's correlation with the image in the ranking (0: silhouette only)."""
    texture_top: int = 6
    """Refined candidates (best by silhouette) whose rendering is compared with the image."""
    ring: float = 0.5
    hypothesis_colors: float = 0.8
    """Box: weight of the colours along a hypothesis' own contour in its starting histograms (the box's
    colours mix object and background)."""
    known_colors: float = 0.0
    """The same with known histograms (re-detection): they are trusted."""
    """Width of the background ring around a box, as a fraction of the box's size."""


@dataclass
class InitResult:
    T_cam_obj: np.ndarray | None
    """(4, 4) best pose, or None when nothing fits."""
    score: float
    """Contour colour agreement of the best pose in [0, 1]."""
    candidates: list[tuple[np.ndarray, float]]
    """All refined candidates ``(T, rank score)``, best first."""


def box_from_mask(mask: np.ndarray) -> tuple[int, int, int, int]:
    """``(x, y, w, h)`` of the mask's pixels."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise ValueError("the object mask is empty")
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def box_histograms(image: np.ndarray, box: tuple[float, float, float, float], bins: int, ring: float,
                   occlusion: np.ndarray | None = None) -> ColorHistograms:
    """Histograms of the pixels inside ``box`` (foreground) and in a ring around it (background)."""
    h, w = image.shape[:2]
    x, y, bw, bh = box
    m = ring * np.sqrt(bw * bh)
    inner = np.zeros((h, w), bool)
    inner[max(0, int(y)):int(np.ceil(y + bh)), max(0, int(x)):int(np.ceil(x + bw))] = True
    outer = np.zeros((h, w), bool)
    outer[max(0, int(y - m)):int(np.ceil(y + bh + m)), max(0, int(x - m)):int(np.ceil(x + bw + m))] = True
    bg = outer & ~inner
    if occlusion is not None:
        inner &= ~occlusion
        bg &= ~occlusion
    hist = ColorHistograms(bins)
    hist.update_from_masks(image, inner, bg)
    return hist


def texture_correlation(image: np.ndarray, mesh: ObjectMesh, T: np.ndarray, K: np.ndarray,
                        occlusion: np.ndarray | None = None) -> float:
    """Normalized cross-correlation (grey levels, in [-1, 1]) of the textured mesh rendered at ``T`` with the
    image over the visible object pixels; 0 when the mesh has no texture or the object is not seen."""
    from inscene.kernels import Appearance, render
    from inscene.kernels.raster import crop_intrinsics, point_box

    if mesh.texture is None and mesh.vertex_colors is None:
        return 0.0
    h, w = image.shape[:2]
    # rendered in the object's box only (the same pixel centres: the principal point moves with the box)
    Xc = mesh.vertices @ T[:3, :3].T + T[:3, 3]
    if not (Xc[:, 2] > 1e-3).all():  # reaching behind the camera: the whole image
        x0, y0, x1, y1 = 0, 0, w, h
    else:
        box = point_box(Xc, K, (h, w))
        if box is None:
            return 0.0
        x0, y0, x1, y1 = box
    Kc = crop_intrinsics(K, x0, y0)
    app = [Appearance(uv=mesh.uv, texture=mesh.texture, vertex_colors=mesh.vertex_colors)]
    rgb, raster = render([(mesh.vertices, mesh.faces)], T[None], Kc, (y1 - y0, x1 - x0), app, ambient=0.45)
    m = raster.mesh_id == 0
    if occlusion is not None:
        m &= ~occlusion[y0:y1, x0:x1]
    if m.sum() < 50:
        return 0.0
    a = rgb[m].astype(np.float64).mean(1)
    b = image[y0:y1, x0:x1][m].astype(np.float64).mean(1)
    a, b = a - a.mean(), b - b.mean()
    d = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / d) if d > 0 else 0.0


def initialize(tracker: RegionTracker, image: np.ndarray, *, box: tuple[float, float, float, float] | None = None,
               mask: np.ndarray | None = None, hist: ColorHistograms | None = None,
               occlusion: np.ndarray | None = None, mesh: ObjectMesh | None = None,
               config: InitConfig | None = None) -> InitResult:
    """Find the object's pose in ``image`` (H, W, 3) uint8 from a ``box`` (x, y, w, h), a ``mask`` (H, W) bool,
    or both; ``hist`` gives known colour histograms (re-detection) instead of the box's.

    On return the tracker holds the best pose and histograms estimated at it (ready to track)."""
    c = config or InitConfig()
    if mask is not None:
        mask = np.asarray(mask, bool)
        box = box or box_from_mask(mask)
        prob = np.where(mask, 0.95, 0.05).astype(np.float32)
        prob = gaussian_filter(prob, 1.0)
    elif box is not None:
        base = hist if hist is not None else box_histograms(image, box, tracker.config.histogram_bins, c.ring,
                                                            occlusion)
        prob = base.probability_image(image)
    else:
        raise ValueError("initialize needs a box or a mask")
    hyps = box_hypotheses(tracker.model, tracker.K, box, prob, image, c.search, occlusion)
    cands: list[tuple[np.ndarray, float, float, ColorHistograms]] = []
    for hyp in hyps:
        T = hyp.T_cam_obj
        if mask is not None:
            T = tracker.refine(image, T, occlusion, prob=prob, iterations=c.passes)
            tracker.reset(image, T, occlusion)
        else:
            tracker.hist = base.copy()  # the box's (or the known) histograms, the same for every hypothesis
            # the box's colours mix object and background: re-estimate them along this hypothesis' contour
            own = c.known_colors if hist is not None else c.hypothesis_colors
            tracker.update_histograms(image, T, occlusion, rate=own)
            for _ in range(c.passes):
                T = tracker.refine(image, T, occlusion)
                tracker.update_histograms(image, T, occlusion, rate=0.5)
        s, vis = tracker.score(image, T, occlusion, prob=prob)
        if vis < 0.2:
            continue
        s_own, _ = tracker.score(image, T, occlusion)
        cands.append((T, 0.5 * (s + s_own), s, tracker.hist.copy()))
    if not cands:
        return InitResult(None, 0.0, [])
    cands.sort(key=lambda k: -k[1])
    if mesh is not None and c.texture_weight > 0 and (mesh.texture is not None or mesh.vertex_colors is not None):
        top = [(T, r + c.texture_weight * texture_correlation(image, mesh, T, tracker.K, occlusion), s, h)
               for T, r, s, h in cands[: c.texture_top]]
        cands = sorted(top, key=lambda k: -k[1]) + cands[c.texture_top:]
    best = cands[0]
    tracker.T = best[0].copy()
    tracker.hist = best[3]
    if mask is not None:
        near = binary_dilation(mask, iterations=2)
        tracker.hist.update_from_masks(image, mask & ~(occlusion if occlusion is not None else False),
                                       ~near, rate_f=0.5, rate_b=0.5)
    return InitResult(best[0], best[2], [(T, r) for T, r, _, _ in cands])
