"""The sliding window over one hand's frames, as frames stream in.

Rows enter with the per-frame estimate (the initialization) and the
observations. Every ``stride`` rows, once ``size`` rows are held, the window is
solved: new slots start from perception (carrying the depth correction the
window found for the previous frame), the others from the previous solve; the
oldest ``stride`` rows then leave the window, decided. The two decided rows
before the window stay in it as fixed slots, so the temporal terms join the
windows without a seam.

Contact per window: evidence on every free slot at the current estimate
(distance of the contact regions to the object after the best depth correction,
overlap with the object's mask; a held contact also ends where the hand's keypoints
leave the hand held on the object in the image, ``image_drift``), hysteresis over
rows (``ContactLabeler``), contact lifting for the slots labelled in contact, then
the LM solve.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from inscene.models.hands.geometry import transl_for_shape
from inscene.models.hands.jacobian import pose_fast
from inscene.models.hands.keypoints import KEYPOINT_PARENTS

from ..config import ContactConfig, WindowConfig
from ..contact.detection import ContactLabeler, image_drift
from ..costs.base import WindowData
from .objective import build_terms
from .problem import SolveInfo, WindowProblem
from .pushout import push_fingers_out
from .types import WindowHand


GATE_SIZES = 0.6
"""A new detection whose keypoints lie farther (median over keypoints) than this many hand sizes (2D box
diagonal) from the hand's last detection, plus ``GATE_GROWTH`` per frame between them, is another hand
(a handedness swap) and is dropped."""
GATE_GROWTH = 0.2
GATE_FRAMES = 5
"""Only detections this close in time to the last accepted one are gated (a hand may reappear anywhere)."""
SIZE_MEMORY = 900
"""Contact frames whose size measurements are kept (the median runs over the latest; 30 s at 30 fps)."""


@dataclass
class Observation:
    """One hand in one frame, as perception delivered it."""

    row: int
    uv: np.ndarray
    """(21, 2) pixels, NaN where missing."""
    conf: np.ndarray
    """(21,)"""
    landmarks: np.ndarray | None
    """(21, 3) relative 3D keypoints, or None."""
    x0: np.ndarray
    """(n,) per-frame fit [global rotation, joint rotations, translation]."""
    betas0: np.ndarray
    """(S,) per-frame shape estimate."""
    T_cam_obj: np.ndarray | None = None
    """(4, 4) object pose, or None."""
    time: float = float("nan")
    """The frame's presentation time, s (NaN: unknown; the frame is taken one frame after the last)."""


SIGMA_3D_RANGE = (0.003, 0.02)
"""Bounds of the estimated noise of the detector's relative 3D keypoints, metres per coordinate."""

_BONE_CHILD = torch.tensor([k for k, p in enumerate(KEYPOINT_PARENTS) if p >= 0])
_BONE_PARENT = torch.tensor([p for p in KEYPOINT_PARENTS if p >= 0])
"""The 20 bones of the keypoint skeleton: (child, parent) keypoint indices."""

JITTER_RATE = 0.3
"""Share of the way the landmark jitter estimate moves towards each window's (as ``sigma_3d_rate``)."""

CHI2_3_MEDIAN = 2.3660
"""Median of the chi-square distribution with 3 degrees of freedom."""

MAX_STEP = 8.0
"""Longest time between two slots the temporal terms span, in frame intervals (a longer stall counts as this)."""


class _Fixed(NamedTuple):
    """A decided row kept as a fixed slot of the next window."""

    row: int
    x: np.ndarray
    keypoints: np.ndarray
    time: float


@dataclass
class _Slot:
    obs: Observation
    x: np.ndarray
    start: np.ndarray
    """The per-frame fit at the window's hand size (see ``HandWindow._start``)."""
    optimized: bool = False
    verts: np.ndarray | None = None
    """(V, 3) the mesh at the estimate the contact evidence was judged on."""
    in_contact: bool = False
    scale: float = 1.0


@dataclass
class Decided:
    """A row leaving the window."""

    row: int
    hand: WindowHand | None
    penetration: float = float("nan")
    """Deepest hand vertex inside the object, metres (0: none; NaN: no object)."""
    vertices: np.ndarray | None = None
    """(V, 3) the hand mesh, camera frame."""
    rejected: bool = False
    """A detection came for this row and was dropped by the identity gate (another hand reported as this one)."""


class HandWindow:
    """The window of one hand side (``push`` rows, get decided rows back)."""

    def __init__(self, model, config: WindowConfig, contact: ContactConfig, K: np.ndarray, scene=None,
                 frame_s: float | None = None) -> None:
        self.model, self.config, self.contact_cfg = model, config, contact
        self.frame_s = frame_s if frame_s is not None and frame_s > 0 else None
        """The source's nominal time between frames, s: the temporal terms measure steps in it (None: one
        row is one frame; a live source that drops frames needs it)."""
        self._size_cfg = dataclasses.replace(contact, hold_depth_scale=config.size_range) if config.size_range else None
        """Contact evidence as ``_measure`` judges it: the depth correction reaches ``size_range``."""
        self.K = np.asarray(K, np.float64)
        self.scene = scene
        """The object: ``ObjectScene`` (mesh caster, SDF, contact candidates) or None."""
        self.problem = WindowProblem(model, build_terms(model, config, with_object=scene is not None))
        self.slots: list[_Slot | None] = []
        """One per row in the window (None: the hand is not there)."""
        self.first_row: int | None = None
        self.fixed: deque[_Fixed] = deque(maxlen=2)
        """The last decided rows (fixed slots of the next window)."""
        self.betas: np.ndarray | None = None
        """The hand's shape (one per hand over time): the model's mean shape until windows with
        contact have measured it against the object (then a running estimate)."""
        self.solved_betas: np.ndarray | None = None
        """The shape of the last solve (the decided frames were fitted with it)."""
        self.size_known = False
        """A window with contact has measured the hand's shape against the object."""
        self.sizes: deque[np.ndarray] = deque(maxlen=SIZE_MEMORY)
        """Shapes measured in contact frames (the per-frame fit's, rescaled to touch the object; see ``_measure``)."""
        self.size_moves: deque[float] = deque(maxlen=SIZE_MEMORY)
        """|log scale| each of :attr:`sizes` moved its per-frame fit by (its weight, ``size_trust``)."""
        self.offset = np.zeros(3)
        """Translation correction of the last optimized frame (window estimate minus its start)."""
        self.labeler: ContactLabeler | None = None
        """Contact labels with hysteresis over the rows (one flag per row, when it enters the window)."""
        self.judged_upto: int | None = None
        """Rows below this have their contact flag pushed to the labeler."""
        self.last_solve: SolveInfo | None = None
        """What the last window solve did (kept alone: a stream may run for hours)."""
        self.vertex_ids = torch.as_tensor(scene.vertex_ids if scene is not None else np.zeros(0, np.int64))
        self._landmarks = next((t for t in self.problem.terms if t.name == "landmarks"), None)
        self.sigma_3d = config.sigma_3d
        """The noise of the detector's relative 3D keypoints as the window's residuals show it (``sigma_3d_rate``)."""
        self.landmark_jitter: float | None = None
        """Frame-to-frame noise of the detector's relative 3D keypoints, metres per coordinate (see
        :meth:`_learn_landmark_jitter`; None until two consecutive frames had them)."""
        self.last_seen: Observation | None = None
        """The last accepted detection (the reference of the identity gate)."""
        self.rejected: set[int] = set()
        """Held rows whose detection the identity gate dropped (another hand reported as this one)."""
        self.contact_since: int | None = None
        """First row of the contact the last decided row is in (None: not in contact)."""
        self.held: np.ndarray | None = None
        """(21, 3) keypoints, object frame, of the last decided row in a settled contact (see ``image_drift``)."""

    # --------------------------------------------------------------- stream
    def push(self, row: int, obs: Observation | None) -> list[Decided]:
        """Add one row (``obs`` None: no hand); returns the rows decided by this push."""
        if self.first_row is None:
            self.first_row = row
        if obs is not None and not self._same_hand(obs):
            self.rejected.add(row)
            obs = None
        if obs is None:
            self.slots.append(None)
        else:
            start = self._start(obs)
            x = start.copy()
            x[-3:] += self.offset
            self.slots.append(_Slot(obs, x, start))
        if len(self.slots) >= self.config.size:
            return self._solve_and_decide(self.config.stride)
        return []

    def _start(self, obs: Observation) -> np.ndarray:
        """The per-frame fit at the window's hand size: moved along its viewing ray so it projects as it did
        (a bigger hand further away)."""
        x = obs.x0.copy()
        betas = self.betas if self.betas is not None else np.zeros(self.model.num_betas)
        if not np.array_equal(obs.betas0, betas):
            x[-3:] = transl_for_shape(self.model, x[-3:], obs.betas0, betas)[0]
        return x

    def _same_hand(self, obs: Observation) -> bool:
        """Whether a detection continues this hand's track (identity gate); accepted ones become the reference."""
        ref = self.last_seen
        if ref is not None and obs.row - ref.row <= GATE_FRAMES:
            both = np.isfinite(obs.uv).all(1) & np.isfinite(ref.uv).all(1)
            if both.sum() >= 5:
                size = float(np.linalg.norm(np.ptp(ref.uv[both], axis=0)))
                jump = float(np.median(np.linalg.norm(obs.uv[both] - ref.uv[both], axis=1)))
                if jump > size * (GATE_SIZES + GATE_GROWTH * (obs.row - ref.row - 1)):
                    return False
        self.last_seen = obs
        return True

    def flush(self) -> list[Decided]:
        """Decide every row still held."""
        out = []
        while self.slots:
            count = min(self.config.stride, len(self.slots))
            out += self._solve_and_decide(count, final=count == len(self.slots))
        return out

    # --------------------------------------------------------------- solve
    def _solve_and_decide(self, count: int, final: bool = False) -> list[Decided]:
        live = [(i, s) for i, s in enumerate(self.slots) if s is not None]
        if live:
            self._solve(live)
        labels = {}
        if self.labeler is not None:
            self._judge()  # rows without a hand still need their (empty) flag
            labels = {r: (c, on, off) for r, c, on, off in self.labeler.decide(self.first_row + count, final=final)}
        out = []
        for i in range(count):
            row = self.first_row + i
            out.append(self._decide(row, self.slots[i], labels.get(row, (False, False, False))))
        self.slots = self.slots[count:]
        self.first_row += count
        return out

    def _solve(self, live: list[tuple[int, _Slot]]) -> None:
        cfg = self.config
        rows = np.array([self.first_row + i for i, _ in live])
        fixed = [f for f in self.fixed if rows[0] - 2 <= f.row < rows[0]]
        if self.betas is None:
            # the model's mean shape: monocular perception cannot tell the hand's size (the
            # detector's 3D keypoints guess it); contacts with the object measure it
            self.betas = np.zeros(self.model.num_betas)
        x = np.stack([f.x for f in fixed] + [s.x for _, s in live])
        all_rows = np.concatenate([[f.row for f in fixed], rows]).astype(np.int64)
        fixed_kp = torch.as_tensor(np.stack([f.keypoints for f in fixed])) if fixed else None
        data = self._data(live, fixed, all_rows)
        # the hand at the start of the solve: for the contacts and the landmarks' scale
        start_kp, start_verts = pose_fast(self.model, self.problem.params(torch.as_tensor(x),
                                                                          torch.as_tensor(self.betas)),
                                          with_vertices=self.scene is not None)
        pending: list[int] = []
        if self.scene is not None:
            pending = self._contacts(live, data, x, torch.from_numpy(start_verts[len(fixed):]).to(self.model.dtype))
        if self._landmarks is not None:
            self._learn_landmark_jitter(data)
        data.extras["landmark_scale"] = self._landmark_scale(torch.from_numpy(start_kp).to(self.model.dtype), data,
                                                             self.landmark_jitter or 0.0)
        first = not any(s.optimized for _, s in live)
        iters = cfg.first_iterations if first else cfg.iterations
        if self._landmarks is not None:
            self._landmarks.sigma_3d = self.sigma_3d
        if pending and iters > 1:
            # new contact frames get their targets lifted from the window's estimate after the first half of
            # the iterations, then the solve goes on with them (with one iteration they wait for the next solve)
            head = iters // 2
            xs, betas, first_part = self.problem.solve(torch.as_tensor(x), torch.as_tensor(self.betas), data, head,
                                                       fixed_kp)
            self._lift_pending(live, data, pending, xs.detach().numpy().astype(np.float64),
                               betas.detach().numpy().astype(np.float64))
            xs, betas, info = self.problem.solve(xs, betas, data, iters - head, fixed_kp)
            # the costs are the second part's (its objective has the new targets)
            info = dataclasses.replace(info, iterations=iters, accepted=first_part.accepted + info.accepted)
        else:
            xs, betas, info = self.problem.solve(torch.as_tensor(x), torch.as_tensor(self.betas), data, iters,
                                                 fixed_kp)
        self.last_solve = info
        if self._landmarks is not None and cfg.sigma_3d_rate > 0:
            self._learn_sigma_3d(xs, betas, data)
        xs = xs.detach().numpy().astype(np.float64)
        betas = betas.detach().numpy().astype(np.float64)
        self.solved_betas = betas
        if self._measures_size:
            if len(self.sizes) >= cfg.size_frames:
                moves = np.asarray(self.size_moves)
                weights = 1.0 / (cfg.size_trust ** 2 + moves ** 2) if cfg.size_trust > 0 else np.ones(len(moves))
                self.betas = weighted_median(np.stack(self.sizes), weights)
                self.size_known = True
        elif cfg.shape_rate > 0 and any(s.in_contact for _, s in live):
            # the object anchors depth in contact: what this window says of the hand's size counts
            self.betas = self.betas + cfg.shape_rate * (betas - self.betas)
            self.size_known = True
        for k, (_, s) in enumerate(live):
            s.x = xs[len(fixed) + k]
            s.optimized = True
        last = live[-1][1]
        self.offset = last.x[-3:] - last.start[-3:]

    def _learn_sigma_3d(self, xs: torch.Tensor, betas: torch.Tensor, data: WindowData) -> None:
        """Move ``sigma_3d`` towards the solved hand's residual against the detector's 3D keypoints.

        The residual is the landmark term's own (keypoints about their mean against the detector's, rescaled
        to the hand's size), RMS per coordinate over the free slots, weighted by confidence. A detector whose
        3D keypoints are good (the oracle: 4 mm) ends near its noise and the term shapes the hand firmly; one
        whose keypoints are poor (the real detector on rendered hands: ~11 mm) is trusted less.
        """
        nf = data.fixed
        w = data.lm_weight[nf:].double() ** 2
        if float(w.sum()) <= 0:
            return
        with torch.no_grad():
            kp = self.model.pose(self.problem.params(xs.to(self.model.dtype), betas.to(self.model.dtype)),
                                 with_vertices=False).keypoints
        r2 = (self._landmarks.difference(kp.to(data.landmarks), data)[nf:].double() ** 2).sum(-1)
        rms = float(((w * r2).sum() / (3 * w.sum())) ** 0.5)
        step = self.config.sigma_3d_rate * (rms - self.sigma_3d)
        self.sigma_3d = float(np.clip(self.sigma_3d + step, *SIGMA_3D_RANGE))

    @staticmethod
    def _landmark_scale(kp: torch.Tensor, data: WindowData, noise: float = 0.0) -> torch.Tensor:
        """(T,) size of the hand ``kp`` (T, 21, 3) over the size of the detector's 3D keypoints, per slot.

        A size is the RMS length of the 20 bones between the keypoints (each finger's chain from the
        wrist; weighted by both ends' confidence): unlike the keypoints' spread about their centre it
        does not change as the fingers curl, so a hand that starts more curled than the detector saw it
        is not taken for a smaller one. Noise lengthens bones (E|b + n_a - n_b|^2 = |b|^2 + 6 noise^2);
        with ``noise`` (metres per coordinate, each end) that excess is taken off the detector's mean
        square: left in, the rescaled shape is too small, the landmark term curls the hand towards it
        and the smaller hand sits nearer the camera to keep its projection.
        """
        w = (data.lm_weight[:, _BONE_CHILD] * data.lm_weight[:, _BONE_PARENT]) ** 2
        wsum = w.sum(1).clamp_min(1e-12)
        hand = (kp[:, _BONE_CHILD] - kp[:, _BONE_PARENT]).pow(2).sum(-1)
        det = (data.landmarks[:, _BONE_CHILD] - data.landmarks[:, _BONE_PARENT]).pow(2).sum(-1)
        num = ((w * hand).sum(1) / wsum).sqrt()
        den = ((w * det).sum(1) / wsum - 6.0 * noise ** 2).clamp_min(0.0).sqrt()
        return torch.where(den > 1e-6, num / den.clamp_min(1e-6), torch.ones_like(num))

    def _learn_landmark_jitter(self, data: WindowData) -> None:
        """Move :attr:`landmark_jitter` ``JITTER_RATE`` of the way to the jitter of this window's landmarks.

        The jitter is read off consecutive frames' relative 3D keypoints (each about its centre): for
        independent noise of ``s`` per coordinate the squared distance between the two is ``2 s^2``
        chi-square with 3 degrees of freedom, whose median is ``4.73 s^2``; the median over keypoints
        and frame pairs is robust to the hand's own motion at video rates. Only this frame-to-frame
        part of the detector's error is taken off its bone lengths: a shape that differs from the model's
        the same way in every frame (which the learned ``sigma_3d`` also counts; ~11 mm for the real detector
        on rendered hands against ~3 mm of jitter) is the detector's view of the hand, not noise about it.
        """
        ok = (data.lm_weight > 0).all(1)
        rows = torch.as_tensor(np.asarray(data.rows))
        pair = ok[1:] & ok[:-1] & (rows[1:] - rows[:-1] == 1)
        if not bool(pair.any()):
            return
        lm = (data.landmarks - data.landmarks.mean(1, keepdim=True)).double()
        d2 = ((lm[1:] - lm[:-1]) ** 2).sum(-1)[pair]
        estimate = float((d2.median() / CHI2_3_MEDIAN / 2.0) ** 0.5)
        prev = self.landmark_jitter
        self.landmark_jitter = estimate if prev is None else prev + JITTER_RATE * (estimate - prev)

    def _data(self, live, fixed, rows) -> WindowData:
        nf = len(fixed)
        T = nf + len(live)
        uv = np.zeros((T, 21, 2))
        conf = np.zeros((T, 21))
        lm = np.zeros((T, 21, 3))
        lmw = np.zeros((T, 21))
        Tco = np.full((T, 4, 4), np.nan)
        for k, (_, s) in enumerate(live):
            o = s.obs
            ok = np.isfinite(o.uv).all(1) & (o.conf > 0)
            uv[nf + k] = np.where(ok[:, None], o.uv, 0.0)
            conf[nf + k] = np.where(ok, o.conf, 0.0)
            if o.landmarks is not None and np.isfinite(o.landmarks).all():
                lm[nf + k] = o.landmarks
                lmw[nf + k] = np.sqrt(conf[nf + k])
            if o.T_cam_obj is not None:
                Tco[nf + k] = o.T_cam_obj
        dt = self.model.dtype
        data = WindowData(rows=rows, fixed=nf, uv=torch.as_tensor(uv, dtype=dt), conf=torch.as_tensor(conf, dtype=dt),
                          landmarks=torch.as_tensor(lm, dtype=dt), lm_weight=torch.as_tensor(lmw, dtype=dt),
                          K=torch.as_tensor(self.K, dtype=dt), vertex_ids=self.vertex_ids,
                          betas_prior=torch.as_tensor(self.betas, dtype=dt))
        if self.scene is not None:
            data.T_cam_obj = torch.as_tensor(Tco)
            data.sdf = self.scene.sdf
        if self.frame_s is not None:
            times = np.array([f.time for f in fixed] + [s.obs.time for _, s in live], np.float64)
            steps = np.diff(times, prepend=np.nan) / self.frame_s
            data.steps = np.clip(np.where(np.isfinite(steps), steps, 1.0), 0.5, MAX_STEP)
        return data

    def _contacts(self, live, data: WindowData, x: np.ndarray, vertices: torch.Tensor) -> list[int]:
        """Contact evidence, labels and lifted targets for the free slots (updates ``data`` and ``x``).

        Targets are lifted from the window's own estimate of a frame, never from its start (the per-frame
        fit): lifted from there they pull the hand to where the noisy fit put it, and every later solve,
        lifting from there, confirms it (README, "Stage 1"). Returns the positions in ``live`` of the
        contact frames no solve has estimated yet (``_lift_pending`` lifts them within this solve).

        ``vertices``: (len(live), V, 3) the free slots' meshes at ``x``.
        """
        nf = data.fixed
        verts = vertices.double().numpy()
        for k, (_, s) in enumerate(live):
            s.verts = verts[k]
        self._judge()
        labels = self.labeler.labels([self.first_row + i for i, _ in live])
        labels = [labels[self.first_row + i] for i, _ in live]
        estimated, pending = [], []
        in_contact = np.zeros(len(data.rows), bool)
        for k, ((_, s), lab) in enumerate(zip(live, labels)):
            s.in_contact = lab
            in_contact[nf + k] = lab
            if not lab or s.obs.T_cam_obj is None:
                continue
            if s.optimized:
                estimated.append(k)
                continue
            pending.append(k)
            if self.config.contact_shift and abs(s.scale - 1.0) > 1e-6:
                # a new contact frame: move the hand along its viewing ray to the depth the evidence found
                shift = (s.scale - 1.0) * verts[k][self.scene.candidates].mean(0)
                s.x = s.x.copy()
                s.x[-3:] += shift
                x[nf + k, -3:] += shift
        data.in_contact = torch.as_tensor(in_contact)
        self._add_lifted(data, live, estimated, verts[estimated])
        return pending

    def _lift_pending(self, live, data: WindowData, pending: list[int], xs: np.ndarray, betas: np.ndarray) -> None:
        """Lift the contacts of the new contact frames ``pending`` (positions in ``live``) from ``xs`` (all slots,
        fixed first), the estimate part of this solve's iterations reached, and add them to ``data``."""
        _, verts = pose_fast(self.model, self.problem.params(torch.as_tensor(xs[[data.fixed + k for k in pending]]),
                                                             torch.as_tensor(betas)))
        self._add_lifted(data, live, pending, verts)

    def _add_lifted(self, data: WindowData, live, slots: list[int], verts: np.ndarray) -> None:
        """Lift the contacts of the free slots ``slots`` (positions in ``live``) with meshes ``verts``
        (len(slots), V, 3), and add them to ``data``'s contacts."""
        if not slots:
            return
        with torch.no_grad():
            normals = self.model.vertex_normals(torch.from_numpy(verts).to(self.model.dtype)).double().numpy()
        c_slot, c_vert, c_target = [], [], []
        if data.contact_slot is not None:
            c_slot, c_vert, c_target = [data.contact_slot.numpy()], [data.contact_vertex.numpy()], \
                [data.contact_target.double().numpy()]
        for j, k in enumerate(slots):
            lifted = self.scene.lift(verts[j], normals[j], self.K, live[k][1].obs.T_cam_obj, self.contact_cfg)
            if lifted is not None and len(lifted[0]):
                c_slot.append(np.full(len(lifted[0]), data.fixed + k))
                c_vert.append(lifted[0])
                c_target.append(lifted[1])
        if c_slot:
            data.contact_slot = torch.as_tensor(np.concatenate(c_slot))
            data.contact_vertex = torch.as_tensor(np.concatenate(c_vert))
            data.contact_target = torch.as_tensor(np.concatenate(c_target), dtype=self.model.dtype)

    def _judge(self) -> None:
        """Push the contact flag of every row not yet judged (evidence once per row, when it is first solved)."""
        if self.labeler is None:
            self.labeler = ContactLabeler(self.contact_cfg, self.first_row)
            self.judged_upto = self.first_row
        prev = False
        if self.judged_upto > self.first_row:
            prev = self.labeler.labels([self.judged_upto - 1])[self.judged_upto - 1]
        for i in range(self.judged_upto - self.first_row, len(self.slots)):
            s = self.slots[i]
            flag = None  # no hand or no object pose: no evidence
            if s is not None and s.obs.T_cam_obj is not None and s.verts is not None:
                ev = self.scene.evidence(s.verts, self.K, s.obs.T_cam_obj, self.contact_cfg, was_in_contact=prev)
                flag, s.scale = ev.possible, ev.scale
                if flag and self._measures_size:
                    size = self._measure(s.obs)
                    if size is not None:
                        self.sizes.append(size)
                        self.size_moves.append(abs(float(size[0] - s.obs.betas0[0])))
                drift_max = self.contact_cfg.release_drift
                if flag and prev and drift_max > 0 and self.held is not None:
                    drift = image_drift(self.held, s.obs.T_cam_obj, self.K, s.obs.uv, s.obs.conf)
                    flag = drift is None or drift <= drift_max
            row = self.first_row + i
            self.labeler.push(row, flag)
            prev = self.labeler.labels([row])[row]
            self.judged_upto = row + 1

    @property
    def _measures_size(self) -> bool:
        return self.config.size_range > 0 and bool(self.model.log_scale)

    def _measure(self, obs: Observation) -> np.ndarray | None:
        """The hand's shape measured in one contact frame (None: the fit touches the object at no scale in range).

        The per-frame fit matches the 2D keypoints at its own (noisy) size; scaled about the
        camera centre it keeps matching them, so the scale at which its contact regions touch
        the object (contact evidence, within ``size_range``) gives the hand's metric size in this
        frame: its log-scale shape parameter plus the log of that scale. Each frame is measured
        on its own fit, not on the window's estimate, so a wrong size does not confirm itself. A fit
        that touches at no scale in range (its pose or size too far off: the real detector's 3D
        keypoints can make it much smaller) measures nothing.
        """
        _, v = self._posed(obs.x0, obs.betas0)
        ev = self.scene.evidence(v, self.K, obs.T_cam_obj, self._size_cfg, was_in_contact=True)
        if not ev.possible:
            return None
        betas = obs.betas0.astype(np.float64).copy()
        betas[0] += np.log(ev.scale)
        return betas

    # -------------------------------------------------------------- decide
    def _decide(self, row: int, slot: _Slot | None, label: tuple[bool, bool, bool]) -> Decided:
        if slot is None:
            rejected = row in self.rejected
            self.rejected.discard(row)
            return Decided(row, None, rejected=rejected)
        x = slot.x
        betas = self.solved_betas  # the shape the frame was solved with
        kp, verts = self._posed(x, betas)
        if label[0] and self.config.pushout and self.scene is not None and slot.obs.T_cam_obj is not None:
            pushed = push_fingers_out(self.model, self.problem.params, x, betas, verts, self.scene.sdf,
                                      slot.obs.T_cam_obj, self.config.pushout_sigma, self.config.pushout_iterations)
            if pushed is not x:
                x = pushed
                kp, verts = self._posed(x, betas)
        in_contact, onset, release = label
        slot.in_contact = in_contact
        P = self.problem.P
        o = slot.obs
        hand = WindowHand(side=self.model.side, global_orient=x[:3].copy(), hand_pose=x[3:3 + 3 * P].reshape(P, 3),
                          betas=betas.copy(), transl=x[-3:].copy(), keypoints=kp, keypoints2d=o.uv.copy(),
                          confidence=o.conf.copy(), in_contact=in_contact, onset=onset, release=release)
        pen = float("nan")
        if self.scene is not None and o.T_cam_obj is not None:
            pen, points = self.scene.penetration_and_contacts(verts, o.T_cam_obj)
            if slot.in_contact:
                hand.contact_points = points
        self.fixed.append(_Fixed(row, x.copy(), kp, o.time))
        self._hold(row, kp, o.T_cam_obj, in_contact, onset)
        return Decided(row, hand, pen, verts)

    def _posed(self, x: np.ndarray, betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints (21, 3) and vertices (V, 3) of the hand at ``x`` with shape ``betas``."""
        kp, verts = pose_fast(self.model, self.problem.params(torch.as_tensor(np.asarray(x, np.float64)[None]),
                                                              torch.as_tensor(np.asarray(betas, np.float64))))
        return kp[0], verts[0]

    def _hold(self, row: int, keypoints: np.ndarray, T_cam_obj: np.ndarray | None, in_contact: bool,
              onset: bool) -> None:
        """Keep the hand's hold on the object (keypoints in the object frame) once its contact has settled."""
        if onset or not in_contact:
            self.contact_since = row if in_contact else None
            self.held = None
        if (in_contact and T_cam_obj is not None and self.contact_since is not None
                and row - self.contact_since >= self.contact_cfg.settle_frames):
            self.held = (keypoints - T_cam_obj[:3, 3]) @ T_cam_obj[:3, :3]


def weighted_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per column of ``values`` (N, S), the value at which the cumulative ``weights`` (N,) reach half their sum
    (the lower one on a tie); with equal weights the lower median."""
    out = np.empty(values.shape[1])
    for j in range(values.shape[1]):
        order = np.argsort(values[:, j], kind="stable")
        cum = np.cumsum(weights[order])
        out[j] = values[order[int(np.searchsorted(cum, 0.5 * cum[-1]))], j]
    return out


def share_size(windows: dict[str, HandWindow]) -> None:
    """One person, one hand size: a hand whose size no contact has measured yet takes the shape the other hand
    measured (both hands' windows, after each row). Before either touches the object both keep the mean."""
    known = [w for w in windows.values() if w.size_known and w.betas is not None]
    if len(known) != 1:
        return
    for w in windows.values():
        if not w.size_known:
            w.betas = known[0].betas.copy()
