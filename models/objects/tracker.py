"""The region-based sparse 6-DoF tracker (SRT3D family, Stoiber et al. 2020/2022).

Per frame, starting from the previous pose, coarse to fine over the scales
(segments of 6, 4, 2, 1 pixels by default):

1. take the viewpoint-model view closest to the current viewing direction and
   project its contour points and normals: one correspondence line per point;
   lines across too thin foreground or background (continuous distance below
   ``min_continuous`` segments) are not used at that scale;
2. per line, the posterior of the contour position from the colour histograms
   (occluded pixels, e.g. under the hand, and pixels outside the image carry no
   information; a line whose centre is hidden is dropped): mean and variance;
3. regularized Newton steps on the Gaussian line residuals:
   ``theta = -(H + diag(l_r, l_r, l_r, l_t, l_t, l_t))^-1 g``, ``T <- T [exp(w), tau]``.

Afterwards the colour histograms are updated from the lines at the final pose and
a tracking score (the contour's colour agreement, :func:`RegionTracker.score`) is computed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inscene.kernels.regions import (Distributions, Lines, line_agreement, line_distributions, newton_system,
                                     project_lines)

from .histograms import ColorHistograms
from .viewpoints import ViewpointModel


@dataclass(frozen=True)
class TrackerConfig:
    """Settings of the region tracker (defaults follow SRT3D / ICG where they apply)."""

    scales: tuple[int, ...] = (6, 4, 2, 1)
    """Segment length in pixels of each correspondence iteration, coarse to fine."""
    std_devs: tuple[float, ...] = (15.0, 5.0, 3.5, 1.5)
    """Floor of the contour standard deviation per iteration, pixels."""
    newton_steps: int = 2
    """Newton steps per correspondence iteration."""
    n_function: int = 8
    """Segments of the smoothed-step window."""
    n_distribution: int = 12
    """Discrete contour positions per line."""
    amplitude: float = 0.43
    """Smoothed step: h_f = 1/2 - amplitude * tanh(x / (2 slope))."""
    slope: float = 0.5
    min_continuous: float = 3.0
    """A line is used at a scale only if foreground and background extend this many segments."""
    tikhonov_rotation: float = 1000.0
    """Newton regularization of the rotation (per rad^2)."""
    tikhonov_translation: float = 30000.0
    """Newton regularization of the translation (per m^2)."""
    histogram_bins: int = 16
    learning_rate_f: float = 0.2
    learning_rate_b: float = 0.2
    histogram_length: float = 20.0
    """Pixels along each line (each side) that feed the histograms."""
    score_length: float = 6.0
    """Pixels on each side of the contour that the score looks at."""
    min_lines: int = 12
    """Fewer usable lines than this: no pose update."""
    parallel: bool | None = None
    """Spread the lines over numba's threads (None: only for many lines; a view's 200 are faster on one)."""


@dataclass
class TrackResult:
    """One frame's outcome."""

    T_cam_obj: np.ndarray
    """(4, 4) float64 the tracked pose."""
    score: float
    """Contour colour agreement in [0, 1] (see :meth:`RegionTracker.score`)."""
    visible: float
    """Fraction of the contour points whose lines saw the image (neither occluded nor outside)."""
    view: int
    """Viewpoint-model view used at the end."""


def pose_increment(theta: np.ndarray) -> np.ndarray:
    """``(4, 4)`` ``[exp([w]), tau]`` of ``theta = (w, tau)`` (6,) (body-frame rotation, then translation)."""
    w = theta[:3]
    a = float(np.linalg.norm(w))
    Wx = np.array([[0.0, -w[2], w[1]], [w[2], 0.0, -w[0]], [-w[1], w[0], 0.0]])
    if a < 1e-12:
        R = np.eye(3) + Wx
    else:
        R = np.eye(3) + np.sin(a) / a * Wx + (1 - np.cos(a)) / a ** 2 * (Wx @ Wx)
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, theta[3:]
    return T


class RegionTracker:
    """Tracks one object; holds its pose and colour histograms between frames.

    Args:
        model: the object's viewpoint model; K: ``(3, 3)`` intrinsics; config: settings.
    """

    def __init__(self, model: ViewpointModel, K: np.ndarray, config: TrackerConfig | None = None) -> None:
        self.model = model
        self.K = np.asarray(K, dtype=np.float64)
        self.config = config or TrackerConfig()
        c = self.config
        if len(c.std_devs) != len(c.scales):
            raise ValueError("TrackerConfig: std_devs needs one value per scale")
        self.hist = ColorHistograms(c.histogram_bins)
        self.T: np.ndarray | None = None
        self._reg = np.diag([c.tikhonov_rotation] * 3 + [c.tikhonov_translation] * 3)

    # -- lines --------------------------------------------------------------------------------------------

    def lines(self, T: np.ndarray, view: int | None = None) -> tuple[int, Lines, np.ndarray, np.ndarray]:
        """Lines of the view nearest to ``T`` (or ``view``): ``(view, lines, fg_len, bg_len)`` (lengths in px)."""
        v = self.model.nearest(T) if view is None else view
        lines = project_lines(self.model.points[v], self.model.normals[v], T, self.K)
        px = self.K[0, 0] / np.maximum(lines.depth, 1e-6)
        return v, lines, self.model.fg_dist[v] * px, self.model.bg_dist[v] * px

    def _in_front(self, T: np.ndarray) -> bool:
        return bool(T[2, 3] - self.model.radius > 1e-3)

    # -- pose refinement ------------------------------------------------------------------------------------

    def refine(self, image: np.ndarray, T: np.ndarray, occlusion: np.ndarray | None = None, *,
               prob: np.ndarray | None = None, iterations: int = 1) -> np.ndarray:
        """Coarse-to-fine Newton refinement of ``T`` (4, 4) against ``image`` (H, W, 3) uint8.

        Pixel posteriors from the histograms, or from ``prob`` (H, W) when given (e.g. a mask).
        ``iterations`` repeats the whole coarse-to-fine pass.
        """
        c = self.config
        T = np.array(T, dtype=np.float64)
        lut = None if prob is not None else self.hist.lut()
        for _ in range(iterations):
            for scale, sd in zip(c.scales, c.std_devs, strict=True):
                if not self._in_front(T):
                    return T
                view, lines, fg_len, bg_len = self.lines(T)
                need = c.min_continuous * scale
                active = (fg_len >= need) & (bg_len >= need)
                dist = line_distributions(image, lines, scale, lut=lut, prob=prob, occlusion=occlusion,
                                          n_function=c.n_function, n_distribution=c.n_distribution,
                                          amplitude=c.amplitude, slope=c.slope, min_var=(sd / scale) ** 2,
                                          active=active, parallel=c.parallel)
                if int(dist.valid.sum()) < c.min_lines:
                    continue
                T = self._newton(T, lines, dist, self.model.points[view])
        return T

    def _newton(self, T: np.ndarray, lines: Lines, dist: Distributions, points: np.ndarray) -> np.ndarray:
        for _ in range(self.config.newton_steps):
            H, g, _ = newton_system(points, lines, dist, T, self.K)
            try:
                theta = -np.linalg.solve(H + self._reg, g)
            except np.linalg.LinAlgError:
                break
            T = T @ pose_increment(theta)
        return T

    # -- score, histograms, tracking ---------------------------------------------------------------------------

    def score(self, image: np.ndarray, T: np.ndarray, occlusion: np.ndarray | None = None, *,
              prob: np.ndarray | None = None) -> tuple[float, float]:
        """``(score, visible)``: mean colour agreement of the contour lines at ``T`` (clipped to [0, 1]) and the
        fraction of lines that saw the image."""
        if not self._in_front(T):
            return 0.0, 0.0
        c = self.config
        _, lines, fg_len, bg_len = self.lines(T)
        n = np.full(len(fg_len), c.score_length)
        lut = None if prob is not None else self.hist.lut()
        a, ok = line_agreement(image, lines, np.minimum(n, fg_len), np.minimum(n, bg_len), lut=lut, prob=prob,
                               occlusion=occlusion, parallel=c.parallel)
        if not ok.any():
            return 0.0, 0.0
        return float(np.clip(a[ok].mean(), 0.0, 1.0)), float(ok.mean())

    def update_histograms(self, image: np.ndarray, T: np.ndarray, occlusion: np.ndarray | None = None,
                          rate: float | None = None) -> bool:
        """Blend the colours along the lines at ``T`` into the histograms (``rate`` 1: replace)."""
        if not self._in_front(T):
            return False
        c = self.config
        _, lines, fg_len, bg_len = self.lines(T)
        inside = (lines.centers[:, 0] >= 0) & (lines.centers[:, 0] <= image.shape[1] - 1) & \
                 (lines.centers[:, 1] >= 0) & (lines.centers[:, 1] <= image.shape[0] - 1)
        rf = c.learning_rate_f if rate is None else rate
        rb = c.learning_rate_b if rate is None else rate
        return self.hist.update_from_lines(image, lines, np.minimum(fg_len, c.histogram_length),
                                           np.minimum(bg_len, c.histogram_length), inside, occlusion, rf, rb)

    def reset(self, image: np.ndarray, T: np.ndarray, occlusion: np.ndarray | None = None) -> None:
        """Start tracking at pose ``T``: histograms from ``image`` at that pose (replacing the old ones)."""
        self.T = np.array(T, dtype=np.float64)
        self.hist = ColorHistograms(self.config.histogram_bins)
        self.update_histograms(image, self.T, occlusion, rate=1.0)

    def track(self, image: np.ndarray, occlusion: np.ndarray | None = None, *, update: bool = True,
              min_score_update: float = 0.3) -> TrackResult:
        """Track one frame from the current pose; update the histograms when the score allows it."""
        if self.T is None:
            raise RuntimeError("RegionTracker.track before reset: give an initial pose first")
        T = self.refine(image, self.T, occlusion)
        score, visible = self.score(image, T, occlusion)
        if update and score >= min_score_update:
            self.update_histograms(image, T, occlusion)
        self.T = T
        return TrackResult(T, score, visible, self.model.nearest(T))
