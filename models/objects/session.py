"""One object tracked through a video: initialization, tracking, loss detection and recovery.

>>> session = TrackingSession(mesh, K)
>>> est = session.start(first_image, box=(x, y, w, h))    # or mask=..., or T=initial pose
>>> est = session.step(image, occlusion=hand_mask)          # per frame; est.valid, est.T_cam_obj, est.score
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .init import InitConfig, box_from_mask, initialize, texture_correlation
from .lost import LossConfig, LossDetector, candidate_boxes
from .mesh import ObjectMesh
from .tracker import RegionTracker, TrackerConfig
from .viewpoints import ViewpointModel, viewpoint_model


@dataclass(frozen=True)
class SessionConfig:
    """Settings of a tracking session."""

    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    init: InitConfig = field(default_factory=InitConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    subdivisions: int = 4
    """Viewpoint model: icosphere level (4: 2562 views)."""
    n_points: int = 200
    """Viewpoint model: contour points per view."""


@dataclass
class Estimate:
    """The object in one frame."""

    T_cam_obj: np.ndarray | None
    """(4, 4) pose; None when not valid."""
    score: float
    """Contour colour agreement in [0, 1] (NaN when there was nothing to score)."""
    visible: float
    """Fraction of the contour lines that saw the image."""
    state: str
    """``tracking``, ``lost``, ``recovered``, ``initialized`` or ``not-found``."""

    @property
    def valid(self) -> bool:
        return self.T_cam_obj is not None


class TrackingSession:
    """Tracks one rigid object (mesh in metres) seen by a camera with intrinsics ``K`` (3, 3)."""

    def __init__(self, mesh: ObjectMesh, K: np.ndarray, model: ViewpointModel | None = None,
                 config: SessionConfig | None = None) -> None:
        self.config = config or SessionConfig()
        c = self.config
        self.mesh = mesh
        self.model = model or viewpoint_model(mesh.vertices, mesh.faces, c.subdivisions, c.n_points)
        self.tracker = RegionTracker(self.model, K, c.tracker)
        self.loss = LossDetector(c.loss)
        self.lost = True
        self.last_good: np.ndarray | None = None
        self._lost_frames = 0

    def start(self, image: np.ndarray, *, T: np.ndarray | None = None, box: tuple[float, ...] | None = None,
              mask: np.ndarray | None = None, occlusion: np.ndarray | None = None) -> Estimate:
        """Initialize in ``image`` from a pose ``T`` (refined), a ``box`` (x, y, w, h) or a ``mask`` (H, W)."""
        tr = self.tracker
        if T is not None:
            tr.reset(image, T, occlusion)
            for _ in range(2):
                tr.T = tr.refine(image, tr.T, occlusion)
                tr.update_histograms(image, tr.T, occlusion, rate=0.5)
            score, visible = tr.score(image, tr.T, occlusion)
        else:
            res = initialize(tr, image, box=box, mask=mask, occlusion=occlusion, mesh=self.mesh,
                             config=self.config.init)
            if res.T_cam_obj is None:
                self.lost = True
                return Estimate(None, float("nan"), 0.0, "not-found")
            score, visible = tr.score(image, tr.T, occlusion)
        self.loss.reset(score)
        self.lost = False
        self.last_good = tr.T.copy()
        return Estimate(tr.T.copy(), score, visible, "initialized")

    def step(self, image: np.ndarray, occlusion: np.ndarray | None = None) -> Estimate:
        """Track one frame (or try to re-detect the object while lost)."""
        if self.tracker.T is None:
            raise RuntimeError("TrackingSession.step before start: initialize with a pose, a box or a mask")
        if self.lost:
            return self._recover(image, occlusion)
        r = self.tracker.track(image, occlusion, update=False)
        if self.loss.learns(r.score):
            self.tracker.update_histograms(image, r.T_cam_obj, occlusion)
        ok = self.loss.update(r.score, r.visible)
        if not ok:
            self.lost = True
            self._lost_frames = 0
            return Estimate(None, r.score, r.visible, "lost")
        if self.loss.is_bad(r.score, r.visible):
            return Estimate(None, r.score, r.visible, "tracking")
        self.last_good = r.T_cam_obj.copy()
        return Estimate(r.T_cam_obj.copy(), r.score, r.visible, "tracking")

    def _recover(self, image: np.ndarray, occlusion: np.ndarray | None) -> Estimate:
        tr = self.tracker
        lc = self.config.loss
        self._lost_frames += 1
        frozen = tr.hist.copy()
        # local: a fresh coarse-to-fine run from the last good pose; every few frames a global search
        T = tr.refine(image, self.last_good, occlusion, iterations=2)
        ok, score, visible = self._plausible(image, T, occlusion)
        if not ok and (self._lost_frames - 1) % lc.search_interval == 0:
            for box in candidate_boxes(frozen.probability_image(image), lc, occlusion):
                res = initialize(tr, image, box=box, hist=frozen, occlusion=occlusion, mesh=self.mesh,
                                 config=self.config.init)
                tr.hist = frozen.copy()
                if res.T_cam_obj is not None:
                    ok, s, v = self._plausible(image, res.T_cam_obj, occlusion)
                    if ok or s > score:
                        T, score, visible = res.T_cam_obj, s, v
                    if ok:
                        break
        tr.hist = frozen
        if not ok:
            return Estimate(None, score, visible, "lost")
        tr.T = T
        self.lost = False
        self.loss.reset()
        self.last_good = T.copy()
        return Estimate(T.copy(), score, visible, "recovered")

    def _plausible(self, image: np.ndarray, T: np.ndarray, occlusion: np.ndarray | None) -> tuple[bool, float, float]:
        """``(accepted, score, visible)`` of a re-detected pose: a good score on most of its lines, well inside
        the image, at a distance like the last good pose's, and (textured meshes) looking like the object."""
        lc = self.config.loss
        score, visible = self.tracker.score(image, T, occlusion)
        if not self.loss.accepts(score, visible, self._inside(T, image.shape)):
            return False, score, visible
        ratio = float(np.linalg.norm(T[:3, 3]) / max(np.linalg.norm(self.last_good[:3, 3]), 1e-9))
        if not 1 / lc.recover_depth_ratio <= ratio <= lc.recover_depth_ratio:
            return False, score, visible
        if self.mesh.texture is not None and lc.recover_texture > -1:
            ncc = texture_correlation(image, self.mesh, T, self.tracker.K, occlusion)
            if ncc < lc.recover_texture:
                return False, score, visible
        return True, score, visible

    def _inside(self, T: np.ndarray, shape: tuple[int, ...]) -> float:
        """Fraction of the contour points at ``T`` that project inside the image, away from its border by a
        margin of ``recover_margin`` times the object's projected size (a part cut off by the border, e.g. a
        handle, would make the pose ambiguous)."""
        if not self.tracker._in_front(T):
            return 0.0
        _, lines, _, _ = self.tracker.lines(T)
        c = lines.centers
        h, w = shape[:2]
        m = self.config.loss.recover_margin * float(np.sqrt(np.prod(np.ptp(c, axis=0)) + 1.0))
        return float(np.mean((c[:, 0] >= m) & (c[:, 0] <= w - 1 - m) & (c[:, 1] >= m) & (c[:, 1] <= h - 1 - m)))


def warmup_pose(mesh: ObjectMesh, K: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Where :func:`warmup` shows the object: unrotated, its box centred in the image, about a third of the
    image high."""
    h, w = size
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    centre = 0.5 * (mesh.vertices.min(0) + mesh.vertices.max(0))
    span = float(np.linalg.norm(mesh.extents))
    z = max(fy * span / (h / 3.0), 2.0 * span)
    T = np.eye(4)
    T[:3, 3] = np.array([(w / 2 - cx) * z / fx, (h / 2 - cy) * z / fy, z]) - centre
    return T


def warmup(mesh: ObjectMesh, K: np.ndarray, size: tuple[int, int], model: ViewpointModel | None = None,
           config: SessionConfig | None = None) -> Estimate:
    """Start a throwaway session from a box on a rendered view of the object, then track one frame.

    A run's first frame searches the box for the pose; done cold it also pays numba's loading of every
    kernel the search and the tracker call and their first calls' one-off costs (~0.5 s of the ~1 s). A stage
    calls this in its set-up instead (``size`` is (H, W) of the run's frames). Returns the start's estimate.
    """
    from inscene.kernels.shading import Appearance, render

    h, w = size
    T = warmup_pose(mesh, K, size)
    rgb, raster = render([(mesh.vertices, mesh.faces)], T[None], K, (h, w), [Appearance(color=(0.8, 0.35, 0.2))])
    inside = raster.mesh_id >= 0
    if not inside.any():  # nothing in view (an odd camera): no warm-up, the first frame pays
        return Estimate(None, float("nan"), 0.0, "not-found")
    image = np.where(inside[..., None], rgb, np.uint8(70))
    session = TrackingSession(mesh, K, model, config)
    est = session.start(image, box=box_from_mask(inside))
    if est.valid:
        session.step(image)
    return est
