"""Backward grasp completion: re-solve an approach (or a retreat) from the contact pose.

Stage 1 decides approach frames without the object to anchor the hand: the 2D
keypoints fix where the hand is across the viewing ray, its depth rests on the
hand-size estimate of that moment. At contact onset the window has optimized the
first contact frame against the object (metric depth, the grasp, the hand's
shape); this module carries that back over the buffered approach:

* the fixed end: the first contact frame's state, untouched (continuity at onset);
  the hand's shape (``betas``) of every revised frame is the contact frame's;
* evidence: the 2D keypoints, robust (Geman-McClure through IRLS, as the per-frame fit);
* the motion prior (``prior.py``) supplies per-frame targets for the wrist, the
  orientation and the finger pose, with the free end re-estimated between rounds of
  a batched Levenberg-Marquardt over the frames (float32, analytic Jacobians);
* the model's pose prior and joint limits, and a weak pull to stage 1's finger pose;
* keypoint acceleration over the revised frames and the fixed frames beside them (as the
  window's term): one trajectory, solved as a block-banded system, that runs into the
  contact frames without a kink;
* then frames near the grasp are pushed out of the object (SDF grid), translation only.

The retreat after a release is the same problem going forward from the last
contact frame (:func:`complete_retreat`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from inscene.models.hands.geometry import transl_for_shape
from inscene.models.hands.jacobian import keypoints_and_jacobian_fast
from inscene.models.hands.model import HandModel
from inscene.models.hands.params import HandParams

from ..costs.base import Evaluation
from ..costs.smoothness import Acceleration, finite_difference
from ..window.banded import BANDWIDTH, BandedSystem
from ..window.types import WindowHand
from .prior import HandState, MotionPrior, PriorTargets


@dataclass(frozen=True)
class CompletionConfig:
    """Weights and iteration counts of the backward solve."""

    rounds: int = 1
    """Prior rounds: targets (free end re-estimated) then LM iterations."""
    iterations: int = 4
    """Levenberg-Marquardt iterations per round."""
    sigma_px: float = 2.0
    """2D keypoint noise scale, pixels."""
    robust_px: float = 12.0
    """Geman-McClure scale of the 2D term, pixels."""
    sigma_stage1_pose: float = 0.02
    """Pull of the finger pose to stage 1's, radians (0 disables). Strong: the images pin the fingers better
    than the aperture profile does (on the synthetic suite a weak pull made the approach MPJPE 35 % worse)."""
    prior_weight: float = 1.0
    """Weight of the hand model's pose prior and joint limits."""
    penetration_s: float = 0.35
    """Frames this close in time to the contact frame are refined against penetration."""
    sigma_penetration: float = 0.002
    """Penetration residual scale, metres."""
    sigma_push: float = 0.01
    """How far the penetration refinement may move a frame (std), metres."""
    penetration_iterations: int = 5
    damping: float = 1e-3
    sigma_accel: float = 0.005
    """Keypoint acceleration scale over the re-solved frames and the fixed frames next to them, metres per
    frame interval squared at ``Z_REF`` depth (the window's term and scale). It makes the frames one trajectory
    (a banded solve instead of one solve per frame) that meets the fixed frames without a kink; 0 disables."""
    junction_weight: float = 30.0
    """Weight of the acceleration groups that hold a fixed frame, where the revised frames meet stage 1's
    decided ones: the revised path must continue them (on the tests' synthetic reach the last revised frame
    bent towards its own 2D evidence at 1, 2.3x the sequence's median acceleration; 0.6x at 30)."""


@dataclass
class RevisedHand:
    """One revised frame of one hand (camera frame, metres)."""

    global_orient: np.ndarray  # (3,)
    hand_pose: np.ndarray  # (P, 3)
    betas: np.ndarray  # (S,)
    transl: np.ndarray  # (3,)
    keypoints: np.ndarray  # (21, 3)
    penetration: float = 0.0
    """Deepest penetration into the object after the refinement, metres (0: none or no object)."""

    @property
    def pose(self) -> np.ndarray:
        """(1 + P, 3) global rotation then joints (the store's layout)."""
        return np.concatenate([self.global_orient[None], self.hand_pose], axis=0)


def state_of(h: WindowHand) -> HandState:
    """The prior's view of a stage-1 hand: wrist (keypoint 0), orientation, fingers."""
    return HandState(np.asarray(h.keypoints[0], np.float64), np.asarray(h.global_orient, np.float64),
                     np.asarray(h.hand_pose, np.float64))


def complete_approach(model: HandModel, K: np.ndarray, frames: list[WindowHand], end: WindowHand,
                      times: np.ndarray, prior: MotionPrior, grid=None, T_cam_obj=None,
                      config: CompletionConfig | None = None,
                      neighbours: Sequence[tuple[float, WindowHand]] = ()) -> list[RevisedHand]:
    """Re-solve the approach frames backward from the first contact frame ``end``.

    Args:
        frames: the buffered approach frames of one hand, oldest first (T).
        end: the (optimized) first contact frame; it is not changed.
        times: (T + 1,) the frames' times then the contact frame's, seconds.
        prior: the motion prior.
        grid: the object's SDF grid (``kernels.sdf_grid``), or None (no penetration refinement).
        T_cam_obj: the object's pose, (4, 4) or one per frame ((T, 4, 4) / list with None), or None.
        neighbours: (time, frame) of the stage-1 frames just after ``end`` (the contact goes on there);
            fixed too, they carry the trajectory's smoothness across the onset.
    Returns:
        T revised frames, in the order of ``frames``.
    """
    return _complete(model, K, frames, end, np.asarray(times, np.float64), prior, grid, T_cam_obj,
                     config or CompletionConfig(), None, neighbours)


def complete_retreat(model: HandModel, K: np.ndarray, start: WindowHand, frames: list[WindowHand],
                     times: np.ndarray, prior: MotionPrior, grid=None, T_cam_obj=None,
                     config: CompletionConfig | None = None,
                     neighbours: Sequence[tuple[float, WindowHand]] = ()) -> list[RevisedHand]:
    """The retreat after a release: ``start`` (the last contact frame) fixed, frames after it re-solved.

    ``times``: (T + 1,) the start's time then the frames' times. ``neighbours``: (time, frame) of the
    stage-1 frames just before ``start``.
    """
    times = np.asarray(times, np.float64)
    order = np.r_[times[1:], times[0]]
    return _complete(model, K, frames, start, order, prior, grid, T_cam_obj, config or CompletionConfig(), None,
                     neighbours)


def complete_between(model: HandModel, K: np.ndarray, start: WindowHand, frames: list[WindowHand],
                     end: WindowHand, times: np.ndarray, prior: MotionPrior, grid=None, T_cam_obj=None,
                     config: CompletionConfig | None = None,
                     neighbours: Sequence[tuple[float, WindowHand]] = ()) -> list[RevisedHand]:
    """Frames between a release (``start``) and the next contact onset (``end``): both ends fixed.

    ``times``: (T + 2,) the start's time, the frames' times, the end's time. ``neighbours``: (time, frame)
    of fixed stage-1 frames beside either end.
    """
    times = np.asarray(times, np.float64)
    return _complete(model, K, frames, end, times[1:], prior, grid, T_cam_obj, config or CompletionConfig(),
                     (start, float(times[0])), neighbours)


# -- the solve -------------------------------------------------------------------------


def _complete(model: HandModel, K: np.ndarray, frames: list[WindowHand], fixed: WindowHand, times: np.ndarray,
              prior: MotionPrior, grid, T_cam_obj, cfg: CompletionConfig,
              other: tuple[WindowHand, float] | None,
              neighbours: Sequence[tuple[float, WindowHand]] = ()) -> list[RevisedHand]:
    T = len(frames)
    if T == 0:
        return []
    if len(times) != T + 1:
        raise ValueError(f"times must hold {T + 1} values (the frames' and the fixed frame's), got {len(times)}")
    dtype = model.dtype
    t_fixed, t_frames = float(times[-1]), times[:T]
    fixed_state = state_of(fixed)
    betas = torch.as_tensor(np.asarray(fixed.betas), dtype=dtype)
    solver = _Solver(model, K, frames, betas, cfg)
    anchors = [(t_fixed, fixed)] + ([] if other is None else [(other[1], other[0])]) + list(neighbours)
    solver.set_trajectory(t_frames, anchors)
    x = solver.initial(frames)
    for _ in range(cfg.rounds):
        current = solver.states(x)
        if other is None:
            targets = prior.targets(t_frames, t_fixed, fixed_state, current)
        else:  # both ends known: one movement from the release to the onset
            targets = _between_targets(prior, times, other, fixed_state, current)
        x = solver.solve(x, targets, cfg.iterations)
    params = solver.unpack(x)
    pen = np.zeros(T)
    if grid is not None and T_cam_obj is not None:
        near = np.abs(t_frames - t_fixed) <= cfg.penetration_s
        if near.any():
            poses = _object_poses(T_cam_obj, T)
            idx = [i for i in np.flatnonzero(near) if poses[i] is not None]
            if idx:
                transl, depth = _push_out(model, params.index(torch.as_tensor(idx)), grid,
                                          np.stack([poses[i] for i in idx]), cfg)
                params.transl = params.transl.clone()
                params.transl[idx] = transl
                pen[idx] = depth
    with torch.no_grad():
        kp = model(params.global_orient, params.hand_pose, params.betas, params.transl, with_vertices=False).keypoints
    out = []
    for i in range(T):
        out.append(RevisedHand(params.global_orient[i].numpy().astype(np.float32),
                               params.hand_pose[i].numpy().astype(np.float32),
                               params.betas[i].numpy().astype(np.float32),
                               params.transl[i].numpy().astype(np.float32),
                               kp[i].numpy().astype(np.float32), float(pen[i])))
    return out


def _between_targets(prior: MotionPrior, times: np.ndarray, other: tuple[WindowHand, float], end: HandState,
                     current: list[HandState]) -> PriorTargets:
    """Targets of frames between two fixed states: the prior from the end, its free end set to the start."""
    start, t_start = other
    t = times[:-1]
    # the profile is defined over [t_start, t_end]: add the start as a (heavily weighted) pseudo frame
    full = np.r_[t_start, t]
    cur = [state_of(start), *current]
    tg = prior.targets(full, float(times[-1]), end, cur, free=state_of(start))
    return PriorTargets(tg.wrist[1:], tg.orient[1:], tg.fingers[1:], tg.sigma_wrist[1:], tg.sigma_orient[1:],
                        tg.sigma_fingers[1:], tg.progress[1:], tg.free)


def _object_poses(T_cam_obj, T: int) -> list[np.ndarray | None]:
    if isinstance(T_cam_obj, np.ndarray) and T_cam_obj.shape == (4, 4):
        return [T_cam_obj] * T
    poses = list(T_cam_obj)
    if len(poses) != T:
        raise ValueError(f"T_cam_obj: expected one pose per frame ({T}), got {len(poses)}")
    return [None if p is None else np.asarray(p, np.float64) for p in poses]


def _gm_weight(err: torch.Tensor, scale: float) -> torch.Tensor:
    s2 = scale * scale
    return (s2 / (s2 + err * err)) ** 2


class _Solver:
    """Batched LM over T frames of one hand; variables per frame: orientation, joints, translation."""

    def __init__(self, model: HandModel, K: np.ndarray, frames: list[WindowHand], betas: torch.Tensor,
                 cfg: CompletionConfig) -> None:
        self.model, self.cfg = model, cfg
        dtype = model.dtype
        T = len(frames)
        self.P, self.S = model.num_pose_joints, model.num_betas
        self.N = 3 + 3 * self.P + 3
        self.betas = betas[None].expand(T, -1)
        uv = torch.as_tensor(np.stack([np.asarray(f.keypoints2d, np.float64)[:, :2] for f in frames]), dtype=dtype)
        conf = torch.as_tensor(np.stack([np.asarray(f.confidence, np.float64) for f in frames]), dtype=dtype)
        ok = torch.isfinite(uv).all(-1) & (conf > 0)
        self.uv = torch.where(ok[..., None], uv, 0.0)
        self.conf = torch.where(ok, conf, 0.0)
        self.K = torch.as_tensor(np.asarray(K), dtype=dtype).expand(T, 3, 3)
        self.pose1 = torch.as_tensor(np.stack([np.asarray(f.hand_pose) for f in frames]), dtype=dtype)
        self.prior_jac = cfg.prior_weight * model.pose_prior.jacobian()  # (R_p, 3 P)
        self.prior_hessian = self.prior_jac.T @ self.prior_jac
        cols = list(range(3 + 3 * self.P)) + list(range(3 + 3 * self.P + self.S, 3 + 3 * self.P + self.S + 3))
        self.cols = torch.as_tensor(cols)
        self.groups: torch.Tensor | None = None  # (G, 3) acceleration groups over [frames, anchors]
        self.coeffs: torch.Tensor | None = None  # (G, 3)
        self.anchor_kp: torch.Tensor | None = None  # (A, 21, 3)

    def set_trajectory(self, t_frames: np.ndarray, anchors: Sequence[tuple[float, WindowHand]]) -> None:
        """The frames and the fixed ``anchors`` (time, frame) as one trajectory: acceleration groups of three
        consecutive instants (in time order) holding at least one free frame, with the divided-difference
        coefficients of their spacing in frame intervals (the median spacing)."""
        T = len(t_frames)
        if self.cfg.sigma_accel <= 0 or T == 0:
            return
        times = np.r_[np.asarray(t_frames, np.float64), [float(t) for t, _ in anchors]]
        order = np.argsort(times, kind="stable")
        if len(order) < 3:
            return
        steps = np.diff(times[order])
        unit = float(np.median(steps[steps > 0])) if (steps > 0).any() else 1.0
        h = np.maximum(steps / unit, 1e-3)
        idx = np.stack([order[:-2], order[1:-1], order[2:]], axis=1)
        keep = (idx < T).any(axis=1)
        if not keep.any():
            return
        spacing = np.stack([np.full(len(h) - 1, np.nan), h[:-1], h[1:]], axis=1)[keep]  # the window's layout
        w = np.where((idx[keep] >= T).any(axis=1), self.cfg.junction_weight ** 0.5, 1.0)
        self.groups = torch.as_tensor(idx[keep])
        self.coeffs = (Acceleration.uneven(spacing) * torch.as_tensor(w)[:, None]).to(self.model.dtype)
        self.anchor_kp = torch.as_tensor(np.stack([np.asarray(f.keypoints, np.float64) for _, f in anchors]),
                                         dtype=self.model.dtype) if anchors else None

    # -- packing ----------------------------------------------------------------

    def unpack(self, x: torch.Tensor) -> HandParams:
        P = self.P
        return HandParams(x[:, :3], x[:, 3:3 + 3 * P].reshape(-1, P, 3), self.betas, x[:, 3 + 3 * P:])

    def initial(self, frames: list[WindowHand]) -> torch.Tensor:
        """Stage 1's estimates with the contact frame's shape; a change of hand size moves the hand
        along the rays through its wrist (the monocular scale ambiguity), keeping its projection."""
        dtype = self.model.dtype
        go = torch.as_tensor(np.stack([np.asarray(f.global_orient) for f in frames]), dtype=dtype)
        hp = torch.as_tensor(np.stack([np.asarray(f.hand_pose) for f in frames]), dtype=dtype)
        transl = transl_for_shape(self.model, np.stack([np.asarray(f.transl) for f in frames]),
                                  np.stack([np.asarray(f.betas) for f in frames]), self.betas[0].double().numpy())
        return torch.cat([go, hp.flatten(1), torch.as_tensor(transl, dtype=dtype)], dim=1)

    def states(self, x: torch.Tensor) -> list[HandState]:
        p = self.unpack(x)
        with torch.no_grad():
            kp = self.model(p.global_orient, p.hand_pose, p.betas, p.transl, with_vertices=False).keypoints
        go, hp, w = p.global_orient.double().numpy(), p.hand_pose.double().numpy(), kp[:, 0].double().numpy()
        return [HandState(w[i], go[i], hp[i]) for i in range(x.shape[0])]

    # -- residuals ----------------------------------------------------------------

    def residuals(self, x: torch.Tensor, tg: dict[str, torch.Tensor]
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """2D errors (T, 21) in pixels, all other per-frame residuals, weighted (T, R), and the keypoints
        (T, 21, 3); no Jacobians."""
        p = self.unpack(x)
        kp = self.model(p.global_orient, p.hand_pose, p.betas, p.transl, with_vertices=False).keypoints
        return (*self._errors(kp, x, p.hand_pose, tg), kp)

    def smoothness(self, kp: torch.Tensor, jk: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Acceleration residuals (G, 63) of the trajectory and, given the keypoint Jacobians ``jk``
        (T, 21, 3, N), their blocks (G, 3, 63, N) per group member (zero for the fixed anchors): the window's
        term (:func:`~inscene.engine.costs.smoothness.finite_difference`) over the frames then the anchors."""
        assert self.groups is not None and self.coeffs is not None
        items, jac = kp, jk
        if self.anchor_kp is not None:
            items = torch.cat([kp, self.anchor_kp.to(kp)])
            if jk is not None:
                jac = torch.cat([jk, jk.new_zeros((len(self.anchor_kp), *jk.shape[1:]))])
        ev = Evaluation(x=items.new_zeros(0), betas=items.new_zeros(0), kp=items, kp_jac=jac)
        block = finite_difference(ev, self.groups, self.coeffs.to(kp), 1.0 / self.cfg.sigma_accel, jk is not None)
        return block.res, block.jac

    def _errors(self, kp: torch.Tensor, x: torch.Tensor, pose: torch.Tensor,
                tg: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        cfg, model = self.cfg, self.model
        hom = kp @ self.K.transpose(-1, -2)
        proj = hom[..., :2] / hom[..., 2:3].clamp_min(1e-4)
        res = [(kp[:, 0] - tg["wrist"]) / tg["sw"][:, None],
               (x[:, :3] - tg["orient"]) / tg["so"][:, None],
               ((pose - tg["fingers"]) / tg["sf"][:, None, None]).flatten(1),
               cfg.prior_weight * model.pose_prior.residual(pose),
               cfg.prior_weight * model.joint_limits.residual(pose)]
        if cfg.sigma_stage1_pose > 0:
            res.append(((pose - self.pose1) / cfg.sigma_stage1_pose).flatten(1))
        return proj - self.uv, torch.cat(res, dim=1)

    def normal_equations(self, x: torch.Tensor, tg: dict[str, torch.Tensor], sw: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Gauss-Newton ``H`` (T, N, N), gradient ``g`` (T, N) and cost (T,) of the per-frame terms at x with 2D
        sqrt weights sw (T, 21); then the keypoints (T, 21, 3) and their Jacobian (T, 21, 3, N).

        Terms with constant or diagonal Jacobians (the targets, the pose prior, stage 1's
        pose) go straight into ``H`` and ``g`` instead of through a full Jacobian.
        """
        cfg, model, P, N = self.cfg, self.model, self.P, self.N
        p = self.unpack(x)
        T = x.shape[0]
        kp, jk = keypoints_and_jacobian_fast(model, p)
        jk = jk[..., self.cols]  # (T, 21, 3, N)
        hom = kp @ self.K.transpose(-1, -2)
        depth = hom[..., 2:3].clamp_min(1e-4)
        proj = hom[..., :2] / depth
        dproj = (self.K[:, None, :2, :] - proj[..., None] * self.K[:, None, 2:3, :]) / depth[..., None]
        w2 = sw[..., None] / cfg.sigma_px
        r2 = ((proj - self.uv) * w2).reshape(T, 42)
        j2 = ((dproj @ jk) * w2[..., None]).reshape(T, 42, N)
        jw = jk[:, 0] / tg["sw"][:, None, None]
        rw = (kp[:, 0] - tg["wrist"]) / tg["sw"][:, None]
        H = j2.transpose(1, 2) @ j2 + jw.transpose(1, 2) @ jw
        g = (j2.transpose(1, 2) @ r2[..., None])[..., 0] + (jw.transpose(1, 2) @ rw[..., None])[..., 0]
        cost = (r2 * r2).sum(-1) + (rw * rw).sum(-1)
        pose = p.hand_pose
        pc = slice(3, 3 + 3 * P)
        # orientation and finger targets, stage 1's fingers: diagonal
        ro = (x[:, :3] - tg["orient"]) / tg["so"][:, None]
        rf = ((pose - tg["fingers"]) / tg["sf"][:, None, None]).flatten(1)
        idx = torch.arange(N)
        diag = torch.zeros(T, N, dtype=x.dtype)
        diag[:, :3] = (1.0 / tg["so"] ** 2)[:, None]
        diag[:, pc] = (1.0 / tg["sf"] ** 2)[:, None]
        g[:, :3] += ro / tg["so"][:, None]
        g[:, pc] += rf / tg["sf"][:, None]
        cost = cost + (ro * ro).sum(-1) + (rf * rf).sum(-1)
        if cfg.sigma_stage1_pose > 0:
            r1 = ((pose - self.pose1) / cfg.sigma_stage1_pose).flatten(1)
            diag[:, pc] += 1.0 / cfg.sigma_stage1_pose ** 2
            g[:, pc] += r1 / cfg.sigma_stage1_pose
            cost = cost + (r1 * r1).sum(-1)
        H[:, idx, idx] += diag
        # the model's pose prior (constant Jacobian) and joint limits (block diagonal)
        rp = cfg.prior_weight * model.pose_prior.residual(pose)
        rl = cfg.prior_weight * model.joint_limits.residual(pose)
        jl = cfg.prior_weight * model.joint_limits.jacobian(pose)
        H[:, pc, pc] += self.prior_hessian + jl.transpose(1, 2) @ jl
        g[:, pc] += rp @ self.prior_jac + (jl.transpose(1, 2) @ rl[..., None])[..., 0]
        cost = cost + (rp * rp).sum(-1) + (rl * rl).sum(-1)
        return H, g, cost, kp, jk

    @staticmethod
    def target_tensors(targets: PriorTargets, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        """The prior's targets and their scales as the residuals read them."""
        return {"wrist": torch.as_tensor(targets.wrist, dtype=dtype),
                "orient": torch.as_tensor(targets.orient, dtype=dtype),
                "fingers": torch.as_tensor(targets.fingers, dtype=dtype),
                "sw": torch.as_tensor(targets.sigma_wrist, dtype=dtype),
                "so": torch.as_tensor(targets.sigma_orient, dtype=dtype),
                "sf": torch.as_tensor(targets.sigma_fingers, dtype=dtype)}

    def solve(self, x: torch.Tensor, targets: PriorTargets, iterations: int) -> torch.Tensor:
        """Levenberg-Marquardt from x (T, N) with the prior's targets (per-frame step acceptance)."""
        dtype = x.dtype
        tg = self.target_tensors(targets, dtype)
        if self.groups is not None:
            return self._solve_trajectory(x, tg, iterations)
        T = x.shape[0]
        lam = torch.full((T,), self.cfg.damping, dtype=dtype)
        eye = torch.eye(self.N, dtype=dtype)
        with torch.no_grad():
            e2d, _, _ = self.residuals(x, tg)
            for _ in range(iterations):
                sw = (self.conf * _gm_weight(e2d.norm(dim=-1), self.cfg.robust_px)).sqrt()
                H, g, cost, _, _ = self.normal_equations(x, tg, sw)
                A = H + lam[:, None, None] * torch.diag_embed(torch.diagonal(H, dim1=1, dim2=2)) + 1e-6 * eye
                delta, info = torch.linalg.solve_ex(A, g[..., None])
                step = torch.where((info == 0)[:, None], -delta[..., 0], 0.0)
                e_new, r_new, _ = self.residuals(x + step, tg)
                c_new = (((e_new * sw[..., None]) / self.cfg.sigma_px) ** 2).sum((-1, -2)) + (r_new * r_new).sum(-1)
                ok = c_new < cost
                x = torch.where(ok[:, None], x + step, x)
                e2d = torch.where(ok[:, None, None], e_new, e2d)
                lam = torch.where(ok, lam * 0.3, lam * 5.0).clamp(1e-7, 1e7)
        return x

    def trajectory_system(self, x: torch.Tensor, tg: dict[str, torch.Tensor], sw: torch.Tensor
                          ) -> tuple[BandedSystem, float]:
        """Gauss-Newton normal equations of the whole trajectory at x (float64, block-banded; its shape border
        is a dummy 1x1 identity, no shape variable) and the cost, with 2D sqrt weights sw (T, 21)."""
        assert self.groups is not None
        T, N = x.shape
        groups, f64 = self.groups, torch.float64
        H, g, cost, kp, jk = self.normal_equations(x, tg, sw)
        rs, js = self.smoothness(kp, jk)
        band = torch.zeros(T, BANDWIDTH + 1, N, N, dtype=f64)
        band[:, 0] = H.double()
        gx = g.double()
        js, rs = js.double(), rs.double()
        flat = band.view(T * (BANDWIDTH + 1), N, N)
        for a in range(3):
            ia = groups[:, a]
            fa = ia < T
            gx.index_add_(0, ia[fa], (js[fa, a].transpose(-1, -2) @ rs[fa, :, None])[..., 0])
            for b in range(a, 3):
                ib = groups[:, b]
                m = fa & (ib < T)
                d = ib[m] - ia[m]  # free frames run in time order: 0 <= d <= 2
                flat.index_add_(0, ia[m] * (BANDWIDTH + 1) + d, js[m, a].transpose(-1, -2) @ js[m, b])
        system = BandedSystem(band, torch.zeros(T, N, 1, dtype=f64), torch.eye(1, dtype=f64), gx,
                              torch.zeros(1, dtype=f64))
        return system, float(cost.sum()) + float((rs * rs).sum())

    def _solve_trajectory(self, x: torch.Tensor, tg: dict[str, torch.Tensor], iterations: int) -> torch.Tensor:
        """Levenberg-Marquardt over all frames at once: the per-frame blocks plus the acceleration groups form
        a block-banded system (each group spans three consecutive instants), solved by block Cholesky."""
        assert self.groups is not None
        lam = self.cfg.damping
        with torch.no_grad():
            e2d, _, _ = self.residuals(x, tg)
            for _ in range(iterations):
                sw = (self.conf * _gm_weight(e2d.norm(dim=-1), self.cfg.robust_px)).sqrt()
                system, total = self.trajectory_system(x, tg, sw)
                out = system.solve(0, lam)
                if out is None:
                    lam = min(lam * 5.0, 1e7)
                    continue
                step = out[0].to(x.dtype)
                e_new, r_new, kp_new = self.residuals(x + step, tg)
                rs_new, _ = self.smoothness(kp_new)
                c_new = float((((e_new * sw[..., None]) / self.cfg.sigma_px) ** 2).sum() + (r_new * r_new).sum()
                              + (rs_new * rs_new).sum())
                if c_new < total:
                    x, e2d = x + step, e_new
                    lam = max(lam * 0.3, 1e-7)
                else:
                    lam = min(lam * 5.0, 1e7)
        return x


def _push_out(model: HandModel, params: HandParams, grid, T_cam_obj: np.ndarray,
              cfg: CompletionConfig) -> tuple[torch.Tensor, np.ndarray]:
    """Translate each hand (B) out of the object: Gauss-Newton on the penetrating vertices' depths.

    Returns the new translations (B, 3) and the deepest remaining penetration per hand (B,), metres.
    """
    R = T_cam_obj[:, :3, :3]
    t = T_cam_obj[:, :3, 3]
    transl = params.transl.double().numpy().copy()
    with torch.no_grad():
        verts = model(params.global_orient, params.hand_pose, params.betas, params.transl).vertices.double().numpy()
    verts = verts - params.transl.double().numpy()[:, None]
    shift = np.zeros_like(transl)
    depth = np.zeros(len(transl))
    for it in range(cfg.penetration_iterations + 1):
        v_cam = verts + (transl + shift)[:, None]
        v_obj = np.einsum("bji,bvj->bvi", R, v_cam - t[:, None])  # R^T (v - t)
        d, grad = grid.lookup(v_obj.reshape(-1, 3).astype(np.float64))
        d = np.nan_to_num(d.reshape(len(transl), -1), nan=1.0)
        grad = np.nan_to_num(grad.reshape(len(transl), -1, 3))
        inside = d < 0
        depth = np.where(inside.any(1), -np.where(inside, d, 0.0).min(1), 0.0)
        if it == cfg.penetration_iterations:
            break
        g_cam = np.einsum("bij,bvj->bvi", R, grad)  # gradient in camera axes
        for b in range(len(transl)):
            if not inside[b].any():
                continue
            J = g_cam[b][inside[b]] / cfg.sigma_penetration
            r = d[b][inside[b]] / cfg.sigma_penetration
            H = J.T @ J + np.eye(3) / cfg.sigma_push ** 2
            gvec = J.T @ r + shift[b] / cfg.sigma_push ** 2
            shift[b] -= np.linalg.solve(H, gvec)
    return torch.as_tensor(transl + shift, dtype=params.transl.dtype), depth
