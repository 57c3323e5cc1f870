"""Per-frame contact evidence and the streaming contact labeler (hysteresis with persistence).

Evidence. Monocular depth of the hand is uncertain by ~10 %, the tracked object is
the metric anchor: scaling the hand about the camera centre by ``s`` keeps its 2D
projection, so a frame's contact evidence is judged at the best ``s`` in
``[1 / (1 + m), 1 + m]`` (``m = ContactConfig.max_depth_scale``). For each ``s`` on a
log-spaced grid (then refined around the best) the candidate vertices are looked up
in the object's SDF; the cost of a scale is

    cost(s) = distance(s) + penetration(s) + lam * |log s|,   lam = on_distance / (4 log(1 + m)),

``distance`` the ``rank``-th smallest outside distance of the candidates (inside
counts as 0, so one stray vertex does not decide), ``penetration`` the deepest
candidate inside the object. ``lam`` only breaks ties in favour of ``s = 1``: the
whole correction range costs a quarter of ``on_distance``, while moving a hand at
0.5 m by 1 % in depth moves it ~5 mm. Only the candidates are looked up, so a hand
pushed most of the way through a thin object may show less penetration than it has
(the window's SDF term sees every vertex).

Release in the image. The depth correction lets a hand that backs away from the
object along the camera's depth axis still "touch" it for a while (within the
hold range), and the window's estimate, pulled onto the object by the contact
term, follows it. The image says otherwise: a hand holding an object moves with
it, so its keypoints stay where the hand, fixed in the object's frame since the
grasp settled, projects under the object's current pose. :func:`image_drift`
measures how far they are from there (median over confident keypoints, in hand
image sizes); beyond ``release_drift`` a held contact is not possible in that frame.
A hand that backs away straight along its line of sight only grows in the image
(5 cm at 0.45 m: 0.04 hand sizes at the image centre), so that release is still
left to the distance test; the same hand off to the side also slides in the image.

Labeler. Per frame ``possible`` flags -> contact labels: a run of at least
``onset_frames`` possible frames starts a contact dated back to the run's first
frame; a run of at least ``release_frames`` not-possible frames ends it, dated back
to that run's first frame. Shorter runs do not change the state. A frame's label is
known once its run agrees with the state, has flipped it, or has ended, so a frame
needs at most ``max(onset_frames, release_frames) - 1`` frames of look-ahead.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from inscene.engine.config import ContactConfig
from inscene.kernels import RayCaster, SDFGrid, project

from .lifting import in_mask

RANK = 3
REGION_REACH = 0.01
"""A region (finger pad, palm) farther than this from the object counts as this far: a grasp is judged by the
regions that touch, not by how far the free fingers are."""
COARSE_STEPS = 33
FINE_STEPS = 17


@dataclass(frozen=True)
class Evidence:
    """One hand's contact evidence in one frame."""

    distance: float
    """Robust smallest distance (``rank``-th smallest, inside = 0) of the candidates to the surface at ``scale``, m."""
    scale: float
    """Depth correction: the hand scaled about the camera centre by this factor."""
    overlap: int
    """Candidate vertices projecting onto the object (mask, or camera ray hitting the mesh)."""
    penetration: float
    """Deepest penetration of the candidates into the object at ``scale``, m (>= 0)."""
    possible: bool
    """overlap >= min_overlap and distance < on_distance (off_distance if in contact the previous frame)."""


def _scale_costs(grid: SDFGrid, points_obj: np.ndarray, offset: np.ndarray, scales: np.ndarray, rank: int,
                 lam: float, regions: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """cost, distance, penetration (S,) of the candidates ``s * points_obj + offset`` (object frame) per scale.

    ``regions``: (order, starts) grouping the candidates by region (``order`` sorts them
    by region, ``starts`` the first position of each); the cost then sums each region's
    smallest outside distance, capped at ``REGION_REACH``, over the regions.
    """
    d, _ = grid.lookup(scales[:, None, None] * points_obj[None] + offset, gradient=False)  # (S, C)
    k = min(rank, d.shape[1]) - 1
    out = np.maximum(d, 0.0)
    dist = np.partition(out, k, axis=1)[:, k]
    pen = np.maximum(-d.min(axis=1), 0.0)
    if regions is None:
        fit = dist
    else:
        order, starts = regions
        per_region = np.minimum.reduceat(out[:, order], starts, axis=1)  # (S, R)
        fit = np.minimum(per_region, REGION_REACH).mean(axis=1)
    return fit + pen + lam * np.abs(np.log(scales)), dist, pen


def contact_evidence(vertices: np.ndarray, candidates: np.ndarray, K: np.ndarray, T_cam_obj: np.ndarray,
                     grid: SDFGrid, caster: RayCaster, config: ContactConfig, mask: np.ndarray | None = None,
                     was_in_contact: bool = False, rank: int = RANK, regions: np.ndarray | None = None) -> Evidence:
    """Contact evidence of one hand in one frame, at the best depth correction (:func:`depth_correction`).

    Args:
        vertices: (V, 3) posed hand vertices, camera frame.
        candidates: (C,) vertex ids (finger pads, palm).
        K: (3, 3) intrinsics. T_cam_obj: (4, 4) object pose.
        grid: the object's SDF (object frame). caster: ray caster on the object mesh (object frame).
        config: thresholds and ``max_depth_scale``.
        mask: (H, W) bool object mask, or None for the object's silhouette (ray hits).
        was_in_contact: the hand was in contact the previous frame (``off_distance`` applies).
        rank, regions: as for :func:`depth_correction`.
    Returns:
        :class:`Evidence`.
    """
    if np.asarray(K).shape != (3, 3):
        raise ValueError(f"contact_evidence: need K (3, 3), got {np.shape(K)}")
    p, T, groups = _candidate_points(vertices, candidates, T_cam_obj, regions)
    if len(p) == 0:
        return Evidence(math.inf, 1.0, 0, 0.0, False)
    # overlap with the object in the image
    if mask is not None:
        overlap = int(in_mask(project(p, np.asarray(K, dtype=np.float64)), np.asarray(mask, dtype=bool)).sum())
    else:
        R, t = T[:3, :3], T[:3, 3]
        hits = caster.cast(np.broadcast_to(-t @ R, p.shape), p @ R, max_hits=2)
        overlap = int((hits.count > 0).sum())
    scale, dist, pen = _best_depth(p, T, grid, config, was_in_contact, rank, groups)
    threshold = config.off_distance if was_in_contact else config.on_distance
    possible = overlap >= config.min_overlap and dist < threshold
    return Evidence(dist, scale, overlap, pen, bool(possible))


def depth_correction(vertices: np.ndarray, candidates: np.ndarray, T_cam_obj: np.ndarray, grid: SDFGrid,
                     config: ContactConfig, was_in_contact: bool = False, rank: int = RANK,
                     regions: np.ndarray | None = None) -> tuple[float, float, float]:
    """``(scale, distance, penetration)``: the scale about the camera centre (the hand's projection unchanged;
    within ``max_depth_scale``, ``hold_depth_scale`` when ``was_in_contact``) at which the hand's contact
    candidates touch the object best, and their distance and deepest penetration there (``(1, inf, 0)`` with no
    candidate in front of the camera). Contact lifting needs only this; :func:`contact_evidence` adds the
    overlap with the object's mask.

    Args:
        rank: without ``regions``, the distance is the ``rank``-th smallest candidate distance.
        regions: (C,) int region of each candidate (finger pad, palm), or None. Given, the
            depth correction is the scale at which the regions touch the object together
            (the mean over regions of each region's distance, capped at ``REGION_REACH``),
            not the one at which any ``rank`` candidates touch: a hand at the wrong depth
            often still touches a curved object with one region.
    """
    p, T, groups = _candidate_points(vertices, candidates, T_cam_obj, regions)
    if len(p) == 0:
        return 1.0, math.inf, 0.0
    return _best_depth(p, T, grid, config, was_in_contact, rank, groups)


def _candidate_points(vertices: np.ndarray, candidates: np.ndarray, T_cam_obj: np.ndarray,
                      regions: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, tuple | None]:
    """The candidates in front of the camera (M, 3), the pose (4, 4) and their grouping by region (checked)."""
    v = np.asarray(vertices, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"contact_evidence: vertices must have shape (V, 3), got {v.shape}")
    cand = np.asarray(candidates, dtype=np.int64)
    if cand.ndim != 1 or (len(cand) and (cand.min() < 0 or cand.max() >= len(v))):
        raise ValueError(f"contact_evidence: candidates must be (C,) vertex ids in [0, {len(v)})")
    T = np.asarray(T_cam_obj, dtype=np.float64)
    if T.shape != (4, 4):
        raise ValueError(f"contact_evidence: need T_cam_obj (4, 4), got {T.shape}")
    p = v[cand]
    good = (p[:, 2] > 1e-6) & np.isfinite(p).all(axis=1)
    p = p[good]
    groups = None
    if regions is not None:
        reg = np.asarray(regions)[good]
        order = np.argsort(reg, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(reg[order]) != 0])
        groups = (order, starts)
    return p, T, groups


def _best_depth(p: np.ndarray, T: np.ndarray, grid: SDFGrid, config: ContactConfig, was_in_contact: bool, rank: int,
                groups) -> tuple[float, float, float]:
    """(scale, distance, penetration) of the best depth correction of the candidates ``p`` (camera frame): a log
    grid, refined once around the best."""
    R, t = T[:3, :3], T[:3, 3]
    p_obj, offset = p @ R, -t @ R  # s p in the object frame: s R^T p - R^T t
    m = math.log1p(config.hold_depth_scale if was_in_contact else config.max_depth_scale)
    lam = config.on_distance / (4.0 * m) if m > 0 else 0.0
    logs = np.linspace(-m, m, COARSE_STEPS)
    cost, dist, pen = _scale_costs(grid, p_obj, offset, np.exp(logs), rank, lam, groups)
    if m > 0:
        step = logs[1] - logs[0]
        best = logs[int(np.argmin(cost))]
        fine = np.clip(np.linspace(best - step, best + step, FINE_STEPS), -m, m)
        logs = np.concatenate([logs, fine])
        c2, d2, p2 = _scale_costs(grid, p_obj, offset, np.exp(fine), rank, lam, groups)
        cost, dist, pen = np.concatenate([cost, c2]), np.concatenate([dist, d2]), np.concatenate([pen, p2])
    # ties (e.g. no depth correction allowed, or several exact zeros): the smallest |log s|
    i = int(np.lexsort((np.abs(logs), cost))[0])
    return float(np.exp(logs[i])), float(dist[i]), float(pen[i])


DRIFT_MIN_CONF = 0.5
"""Keypoints with less detector confidence (often hidden by the object) do not count in :func:`image_drift`."""


def image_drift(held: np.ndarray, T_cam_obj: np.ndarray, K: np.ndarray, uv: np.ndarray,
                conf: np.ndarray) -> float | None:
    """How far a hand's detected keypoints are from where a hand held still on the object would be, in the image.

    Args:
        held: (21, 3) the hand's keypoints in the object frame, from a frame in which it held the object.
        T_cam_obj: (4, 4) the object's pose in this frame. K: (3, 3) intrinsics.
        uv: (21, 2) detected keypoints in this frame, pixels (NaN: missing). conf: (21,) their confidence.
    Returns:
        Median distance over the confident keypoints between ``uv`` and the projection of ``held``, over the
        diagonal of the detected hand's box; None when fewer than 5 keypoints are confident or ``held`` is
        behind the camera.
    """
    T = np.asarray(T_cam_obj, np.float64)
    p = np.asarray(held, np.float64) @ T[:3, :3].T + T[:3, 3]
    if not (p[:, 2] > 1e-6).all():
        return None
    ok = np.isfinite(uv).all(axis=1) & (np.asarray(conf) >= DRIFT_MIN_CONF)
    if ok.sum() < 5:
        return None
    size = float(np.linalg.norm(np.ptp(uv[ok], axis=0)))
    gap = np.linalg.norm(uv[ok] - project(p[ok], np.asarray(K, np.float64)), axis=1)
    return float(np.median(gap)) / max(size, 1.0)


def label_sequence(possible: list[bool | None], config: ContactConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offline contact labels of a whole clip (the batch twin of :class:`ContactLabeler`).

    Args:
        possible: (T,) per-frame flags; None means no evidence (e.g. no object pose): the
            state holds and a run of opposing flags starts over.
    Returns:
        in_contact (T,) bool, onset (T,) bool (first frame of each contact),
        release (T,) bool (first frame after each contact).
    """
    n = len(possible)
    in_contact = np.zeros(n, bool)
    state, run = False, []  # rows of the current run of flags opposing the state
    for i, p in enumerate(possible):
        in_contact[i] = state
        if p is None or bool(p) == state:
            run = []
            continue
        run.append(i)
        if len(run) >= (config.release_frames if state else config.onset_frames):
            state = bool(p)
            in_contact[run[0]:i + 1] = state
            run = []
    before = np.concatenate([[False], in_contact[:-1]])
    return in_contact, in_contact & ~before, ~in_contact & before


class ContactLabeler:
    """Streaming contact labels of one hand: ``push`` one flag per frame, ``decide`` frames as they leave the window.

    Rows must be pushed consecutively. A frame can be decided once it has
    ``max(onset_frames, release_frames) - 1`` frames after it (the window lag must be at
    least that). ``copy()`` / ``state()`` / ``restore()`` let a caller re-run a stretch.
    """

    def __init__(self, config: ContactConfig, first_row: int = 0) -> None:
        self.onset_frames, self.release_frames = int(config.onset_frames), int(config.release_frames)
        self._next = first_row  # next row to push
        self._first = first_row  # first undecided row
        self._state = False  # contact state after the last pushed frame (flips when a run qualifies)
        self._before = False  # label of the row before ``_first`` (for onset/release of the first undecided row)
        self._run_start: int = first_row  # first row of the current run of flags opposing the state
        self._run_len = 0  # flags in that run (rows without evidence inside it not counted)
        self._labels: list[bool] = []  # labels of rows _first .. _next - 1 (provisional for an open short run)

    @property
    def lookahead(self) -> int:
        """Frames after a row needed to decide it."""
        return max(self.onset_frames, self.release_frames) - 1

    def push(self, row: int, possible: bool | None) -> None:
        """Add the flag of frame ``row`` (None: no evidence; the state holds and a run starts over)."""
        if row != self._next:
            raise ValueError(f"contact labeler: expected row {self._next}, got {row}; push every frame once, in order")
        self._labels.append(self._state)
        self._next += 1
        if possible is None or bool(possible) == self._state:
            self._run_len = 0
            return
        flag = bool(possible)
        if self._run_len == 0:
            self._run_start = row
        self._run_len += 1
        if self._run_len >= (self.release_frames if self._state else self.onset_frames):
            if self._run_start < self._first:
                raise RuntimeError("contact labeler: a decided row would change; decide with more look-ahead")
            self._state = flag
            self._run_len = 0
            for r in range(self._run_start, self._next):
                self._labels[r - self._first] = flag

    def _pending_from(self) -> int:
        """First row whose label may still change (``_next`` if none)."""
        return self._run_start if self._run_len > 0 else self._next

    def labels(self, rows: Iterable[int]) -> dict[int, bool]:
        """Current (provisional for the last few) labels of pushed, undecided ``rows``."""
        out = {}
        for r in rows:
            if not self._first <= r < self._next:
                raise ValueError(f"contact labeler: row {r} is not pending (pending rows {self._first}..{self._next - 1})")
            out[r] = self._labels[r - self._first]
        return out

    def decide(self, upto_row: int, final: bool = False) -> list[tuple[int, bool, bool, bool]]:
        """Finalize rows < ``upto_row``: ``[(row, in_contact, onset, release)]``.

        ``final``: the stream has ended at the last pushed row (open short runs stay as they are).
        """
        if upto_row > self._next:
            raise ValueError(f"contact labeler: cannot decide up to row {upto_row}, only rows < {self._next} pushed")
        pending = self._pending_from()
        if not final and upto_row > pending:
            need = self.release_frames if self._state else self.onset_frames
            missing = pending + need - self._next
            raise ValueError(f"contact labeler: row {pending} needs {missing} more frame(s) of look-ahead; decide "
                             f"later (window lag >= max(onset_frames, release_frames) - 1)")
        out = []
        prev = self._before
        for r in range(self._first, upto_row):
            lab = self._labels[r - self._first]
            out.append((r, lab, lab and not prev, prev and not lab))
            prev = lab
        del self._labels[:max(upto_row - self._first, 0)]
        if upto_row > self._first:
            self._first, self._before = upto_row, prev
        return out

    def copy(self) -> ContactLabeler:
        """An independent copy (cheap: the pending rows only)."""
        return copy.deepcopy(self)

    def state(self) -> dict:
        """Everything needed to :meth:`restore` this labeler."""
        return {k: (list(v) if isinstance(v, list) else v) for k, v in vars(self).items()}

    def restore(self, state: dict) -> None:
        """Go back to a :meth:`state`."""
        for k, v in state.items():
            setattr(self, k, list(v) if isinstance(v, list) else v)
