"""Per-frame fitting of a hand model to 2D keypoints (and optional relative 3D landmarks).

Batched Levenberg-Marquardt over frames x hands on one parameter vector per hand
(global rotation, joint rotations, shape, camera-frame translation). Residuals:
robust 2D reprojection (Geman-McClure through iteratively reweighted least squares,
its scale annealed from coarse to fine on cold starts), optional root-relative 3D
landmarks, the pose prior, the joint limits and the shape prior; the hand-size
prior is what fixes depth. Jacobians are analytic (``jacobian.py``).

This is the per-frame baseline that later stages (windowed, object-anchored) must beat.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .fit_init import candidate_rotations, initial_translation, kabsch_rotation
from .jacobian import keypoints_and_jacobian, keypoints_and_jacobian_fast
from .model import HandModel
from .params import HandParams


@dataclass(frozen=True)
class FitConfig:
    """Weights and iteration counts of the per-frame fit."""

    iterations: int = 25
    """Levenberg-Marquardt iterations of a cold start (after 8 rigid ones per candidate)."""
    warm_iterations: int = 4
    """Iterations when started from a previous estimate."""
    rigid_iterations: int = 8
    """Iterations on rotation and translation only, per orientation candidate (cold start)."""
    keep_candidates: int = 2
    """Orientation candidates refined fully after the rigid stage (cold start)."""
    sigma_px: float = 2.0
    """Keypoint noise scale, pixels: a 2D residual of this size costs as much as one prior std."""
    robust_px: float = 12.0
    """Geman-McClure scale, pixels: errors well beyond it stop pulling."""
    robust_start_px: float = 80.0
    """Robust scale at the first cold-start iteration (annealed to ``robust_px``)."""
    sigma_3d: float = 0.01
    """Noise scale of relative 3D landmarks, metres."""
    prior_weight: float = 1.0
    limit_weight: float = 1.0
    shape_weight: float = 1.0
    fit_shape: bool = True
    """Fit the shape parameters (otherwise they stay at the initial values)."""
    damping: float = 1e-3
    """Initial Levenberg-Marquardt damping (relative to the Hessian diagonal)."""


@dataclass
class FitResult:
    """Fitted hands of one model and side."""

    params: HandParams
    """Fitted parameters (B hands)."""
    keypoints: torch.Tensor
    """(B, 21, 3) fitted keypoints, camera frame, metres."""
    reprojection_px: torch.Tensor
    """(B, 21) distance between projected fitted and observed keypoints, pixels."""
    inlier_weight: torch.Tensor
    """(B, 21) final robust weight of each keypoint (1 inlier, ~0 rejected)."""
    cost: torch.Tensor
    """(B,) final objective (Geman-McClure loss on the 2D errors, squares of the other residuals)."""


def project(points: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Pinhole projection. points (B, N, 3) camera frame, K (B, 3, 3) -> (B, N, 2) pixels."""
    p = points @ K.transpose(-1, -2)
    return p[..., :2] / p[..., 2:3].clamp_min(1e-4)


def _gm_weight(err: torch.Tensor, scale: float) -> torch.Tensor:
    """Geman-McClure IRLS weight of residual norms ``err``."""
    s2 = scale * scale
    return (s2 / (s2 + err * err)) ** 2


class _Problem:
    """The least-squares problem of one model/config over a batch of hands."""

    def __init__(self, model: HandModel, cfg: FitConfig, with_landmarks: bool) -> None:
        self.model, self.cfg, self.with_landmarks = model, cfg, with_landmarks
        self.P, self.S = model.num_pose_joints, model.num_betas
        self.N = 3 + 3 * self.P + self.S + 3
        self.prior_jac = cfg.prior_weight * model.pose_prior.jacobian()  # (R_p, 3 P), constant

    def unpack(self, x: torch.Tensor) -> HandParams:
        """(B, N) -> HandParams."""
        P, S = self.P, self.S
        return HandParams(x[:, :3], x[:, 3:3 + 3 * P].reshape(-1, P, 3), x[:, 3 + 3 * P:3 + 3 * P + S],
                          x[:, 3 + 3 * P + S:])

    @staticmethod
    def pack(p: HandParams) -> torch.Tensor:
        return p.flat()

    def evaluate(self, x: torch.Tensor, obs: tuple) -> _Eval:
        """Unweighted data residuals, regularizers and their Jacobians at x (B, N)."""
        uv, _, K, lm, sw3 = obs
        cfg, model = self.cfg, self.model
        p = self.unpack(x)
        B, P, S, N = x.shape[0], self.P, self.S, self.N
        kp, jk = (keypoints_and_jacobian_fast if model.device.type == "cpu" else keypoints_and_jacobian)(model, p)
        hom = kp @ K.transpose(-1, -2)
        depth = hom[..., 2:3].clamp_min(1e-4)
        proj = hom[..., :2] / depth
        dproj = (K[:, None, :2, :] - proj[..., None] * K[:, None, 2:3, :]) / depth[..., None]  # (B, 21, 2, 3)
        res2, jac2 = (proj - uv) / cfg.sigma_px, (dproj @ jk) / cfg.sigma_px
        res, jac = [], []
        if self.with_landmarks:
            w3 = sw3[..., None] / cfg.sigma_3d
            rel = (kp - kp.mean(1, keepdim=True)) - (lm - lm.mean(1, keepdim=True))
            res.append((rel * w3).flatten(1))
            jac.append(((jk - jk.mean(1, keepdim=True)) * w3[..., None]).reshape(B, 63, N))
        pose = p.hand_pose
        cols = slice(3, 3 + 3 * P)
        res.append(cfg.prior_weight * model.pose_prior.residual(pose))
        prior = x.new_zeros(B, self.prior_jac.shape[0], N)
        prior[:, :, cols] = self.prior_jac
        jac.append(prior)
        res.append(cfg.limit_weight * model.joint_limits.residual(pose))
        limits = x.new_zeros(B, 3 * P, N)
        limits[:, :, cols] = cfg.limit_weight * model.joint_limits.jacobian(pose)
        jac.append(limits)
        if cfg.fit_shape:
            res.append(cfg.shape_weight * p.betas / model.beta_std)
            shape = x.new_zeros(B, S, N)
            shape[:, :, 3 + 3 * P:3 + 3 * P + S] = torch.diag(cfg.shape_weight / model.beta_std)
            jac.append(shape)
        return _Eval(kp, proj, res2, jac2, torch.cat(res, dim=1), torch.cat(jac, dim=1))

    def free_columns(self, rigid: bool) -> list[int]:
        """Indices of the parameters a stage optimizes."""
        P, S, N = self.P, self.S, self.N
        if rigid:
            return list(range(3)) + list(range(N - 3, N))
        shape = list(range(3 + 3 * P, 3 + 3 * P + S)) if self.cfg.fit_shape else []
        return list(range(3 + 3 * P)) + shape + list(range(N - 3, N))

    def solve(self, x: torch.Tensor, obs: tuple, iterations: int, rigid: bool,
              scales: list[float]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Levenberg-Marquardt from x (B, N). Returns x, robust cost (B,), keypoints (B, 21, 3), weights (B, 21).

        Each iteration re-weights the 2D residuals (IRLS) at the current estimate, solves the
        damped normal equations on the free parameters and keeps the step where it lowers
        the cost; the candidate's evaluation (with Jacobians) is reused when accepted.
        """
        uv, conf = obs[0], obs[1]
        free = self.free_columns(rigid)
        lam = torch.full(x.shape[:1], self.cfg.damping, dtype=x.dtype, device=x.device)
        eye = torch.eye(len(free), dtype=x.dtype, device=x.device)
        cur = self.evaluate(x, obs)
        w = conf
        for it in range(iterations):
            scale = scales[min(it, len(scales) - 1)]
            w = conf * _gm_weight((cur.proj - uv).norm(dim=-1), scale)
            sw2 = w.sqrt()
            r, jac = cur.weighted(sw2)
            jac = jac[:, :, free]
            cost = (r * r).sum(-1)
            jt = jac.transpose(1, 2)
            H = jt @ jac
            g = (jt @ r[..., None])[..., 0]
            A = H + lam[:, None, None] * torch.diag_embed(torch.diagonal(H, dim1=1, dim2=2)) + 1e-6 * eye
            delta, info = torch.linalg.solve_ex(A, g[..., None])
            step = torch.zeros_like(x)
            step[:, free] = torch.where((info == 0)[:, None], -delta[..., 0], 0.0)
            cand = self.evaluate(x + step, obs)
            r_new = cand.weighted(sw2, jacobian=False)[0]
            cost_new = (r_new * r_new).sum(-1)
            ok = cost_new < cost
            x = torch.where(ok[:, None], x + step, x)
            cur = _Eval.select(ok, cand, cur)
            lam = torch.where(ok, lam * 0.3, lam * 5.0).clamp(1e-7, 1e7)
        final = scales[min(max(iterations - 1, 0), len(scales) - 1)]
        return x, self.robust_cost(cur, uv, conf, final), cur.kp, w

    def solve_fast(self, x: torch.Tensor, obs: tuple, iterations: int, rigid: bool, scales: list[float]
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`solve` by the numba kernel (``kernels/handfit.py``, float64 inside); the same returns in the
        model's dtype."""
        from inscene.kernels.handfit import fit_lm

        from .jacobian import hand_kinematics

        uv, conf, K, lm, _ = obs
        kin, keypoints, _ = hand_kinematics(self.model)

        def f64(t: torch.Tensor):
            return t.detach().to(torch.float64).cpu().numpy()

        out = fit_lm(kin, keypoints, self.fit_terms(), f64(x), f64(uv), f64(conf), f64(K),
                     f64(lm) if self.with_landmarks else None, iterations, np.asarray(scales, np.float64), rigid)
        dtype = self.model.dtype
        return tuple(torch.from_numpy(a).to(dtype) for a in out)  # type: ignore[return-value]

    def fit_terms(self):
        """The fit's weights and priors as the kernel takes them (built once per problem)."""
        from inscene.kernels.handfit import FitTerms

        from .priors import LIMIT_TOLERANCE_DEG

        cached = self.__dict__.get("_terms")
        if cached is not None:
            return cached
        cfg, model, P = self.cfg, self.model, self.P
        zero = torch.zeros(1, P, 3, dtype=model.dtype)
        c = (cfg.prior_weight * model.pose_prior.residual(zero))[0].double().numpy()  # the prior is affine
        limits = model.joint_limits
        terms = FitTerms(cfg.sigma_px, cfg.robust_px, cfg.sigma_3d, self.prior_jac.double().numpy(), c,
                         limits.to_anatomical.double().numpy(), limits.lower.double().numpy(),
                         limits.upper.double().numpy(), cfg.limit_weight * 180.0 / math.pi / LIMIT_TOLERANCE_DEG,
                         (cfg.shape_weight / model.beta_std.double()).numpy(), cfg.fit_shape, cfg.damping)
        self.__dict__["_terms"] = terms
        return terms

    def robust_cost(self, ev: _Eval, uv: torch.Tensor, conf: torch.Tensor, scale: float) -> torch.Tensor:
        """(B,) the objective with the Geman-McClure loss on the 2D errors (to compare estimates:
        the reweighted least-squares cost favours whichever rejects more keypoints)."""
        e2 = ((ev.proj - uv) ** 2).sum(-1)
        rho = scale * scale * e2 / (scale * scale + e2)
        return (conf * rho).sum(-1) / self.cfg.sigma_px ** 2 + (ev.res * ev.res).sum(-1)


@dataclass
class _Eval:
    """One evaluation of the problem: keypoints, unweighted 2D terms, weighted other terms."""

    kp: torch.Tensor  # (B, 21, 3)
    proj: torch.Tensor  # (B, 21, 2)
    res2: torch.Tensor  # (B, 21, 2) 2D residuals / sigma_px
    jac2: torch.Tensor  # (B, 21, 2, N)
    res: torch.Tensor  # (B, R) landmarks, prior, limits, shape
    jac: torch.Tensor  # (B, R, N)

    def weighted(self, sw2: torch.Tensor, jacobian: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """All residuals (B, 42 + R) with the 2D ones scaled by sqrt weights (B, 21), and the Jacobian."""
        B = self.res.shape[0]
        r = torch.cat([(self.res2 * sw2[..., None]).reshape(B, 42), self.res], dim=1)
        if not jacobian:
            return r, None
        j2 = (self.jac2 * sw2[..., None, None]).reshape(B, 42, -1)
        return r, torch.cat([j2, self.jac], dim=1)

    @staticmethod
    def select(mask: torch.Tensor, a: _Eval, b: _Eval) -> _Eval:
        """Per hand, ``a`` where mask else ``b``."""
        def pick(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            return torch.where(mask.reshape((-1,) + (1,) * (u.dim() - 1)), u, v)

        return _Eval(*(pick(getattr(a, f), getattr(b, f)) for f in ("kp", "proj", "res2", "jac2", "res", "jac")))


def _wrap_rotvec(x: torch.Tensor) -> torch.Tensor:
    """Same rotation with angle in [0, pi] (axis-angle leaves its chart beyond pi)."""
    angle = x.norm(dim=-1, keepdim=True)
    return torch.where(angle > torch.pi, x * (1.0 - 2.0 * torch.pi / angle.clamp_min(1e-9)), x)


def fit_keypoints(model: HandModel, keypoints2d: torch.Tensor, confidence: torch.Tensor, K: torch.Tensor,
                  landmarks3d: torch.Tensor | None = None, init: HandParams | None = None,
                  config: FitConfig | None = None, fast: bool = True) -> FitResult:
    """Fit pose, shape and camera-frame translation of B hands of one model and side.

    Args:
        keypoints2d: (B, 21, 2) pixels, MediaPipe order (NaN for a missing keypoint).
        confidence: (B, 21) in [0, 1]; 0 ignores a keypoint.
        K: (3, 3) or (B, 3, 3) intrinsics.
        landmarks3d: optional (B, 21, 3) relative 3D keypoints, metres, camera axes, any origin.
        init: a previous estimate to warm-start from (then ``warm_iterations``), else a cold start.
        config: weights and iteration counts.
        fast: the Levenberg-Marquardt runs as the numba kernel (``kernels/handfit.py``) on the CPU; False: the
            torch solve, its twin.
    Returns:
        :class:`FitResult` with B hands.
    """
    cfg = config or FitConfig()
    dtype, device = model.dtype, model.device
    uv = keypoints2d.to(dtype=dtype, device=device)
    conf = confidence.to(dtype=dtype, device=device)
    valid = torch.isfinite(uv).all(-1) & (conf > 0)  # missing keypoints may come as NaN
    if landmarks3d is not None:
        landmarks3d = torch.nan_to_num(landmarks3d.to(dtype=dtype, device=device))
    conf, uv = torch.where(valid, conf, 0.0), torch.where(valid[..., None], uv, 0.0)
    B = uv.shape[0]
    K = K.to(dtype=dtype, device=device).expand(B, 3, 3) if K.dim() == 2 else K.to(dtype=dtype, device=device)
    with_lm = landmarks3d is not None
    lm = landmarks3d.to(dtype=dtype, device=device) if with_lm else torch.zeros(B, 21, 3, dtype=dtype, device=device)
    sw3 = (conf if with_lm else torch.zeros_like(conf)).sqrt()
    problem = _Problem(model, cfg, with_lm)

    if init is not None:
        x = problem.pack(init.to(dtype=dtype, device=device))
        solve = problem.solve_fast if device.type == "cpu" and fast else problem.solve
        x, cost, kp, w = solve(x, (uv, conf, K, lm, sw3), cfg.warm_iterations, False, [cfg.robust_px])
    else:
        x, cost, kp, w = _cold_start(model, problem, cfg, uv, conf, K, lm, sw3, device.type == "cpu" and fast)
    x = torch.cat([_wrap_rotvec(x[:, :3]), x[:, 3:]], dim=1)
    params = problem.unpack(x)
    err = (project(kp, K) - uv).norm(dim=-1)
    return FitResult(params=params.detach(), keypoints=kp.detach(), reprojection_px=err.detach(),
                     inlier_weight=(w / conf.clamp_min(1e-12)).detach(), cost=cost.detach())


def _cold_start(model: HandModel, problem: _Problem, cfg: FitConfig, uv, conf, K, lm, sw3, fast: bool = False):
    """Orientation candidates -> rigid LM each -> full LM on the best few -> the best."""
    B = uv.shape[0]
    dtype, device = uv.dtype, uv.device
    mean_pose = model.pose_prior.mean_pose().to(dtype)
    with torch.no_grad():
        rest_kp = model(torch.zeros(1, 3, dtype=dtype, device=device), mean_pose[None],
                        with_vertices=False).keypoints[0]
    if problem.with_landmarks:
        rot = kabsch_rotation(rest_kp, lm, sw3)[:, None]
    else:
        rot = candidate_rotations(rest_kp, uv, model.side)
    C = rot.shape[1]
    rot = rot.reshape(B * C, 3)

    def rep(t: torch.Tensor) -> torch.Tensor:
        return t.repeat_interleave(C, dim=0)

    obs = (rep(uv), rep(conf), rep(K), rep(lm), rep(sw3))
    transl = initial_translation(rest_kp, rot, obs[0], obs[1], obs[2])
    x = problem.pack(HandParams(rot, mean_pose[None].expand(B * C, -1, -1), torch.zeros(B * C, model.num_betas,
                                dtype=dtype, device=device), transl))
    coarse = [cfg.robust_start_px] * cfg.rigid_iterations
    solve = problem.solve_fast if fast else problem.solve
    x, cost, _, _ = solve(x, obs, cfg.rigid_iterations, True, coarse)
    keep = min(cfg.keep_candidates, C)
    best = cost.reshape(B, C).topk(keep, largest=False).indices  # (B, keep)
    rows = (torch.arange(B, device=device)[:, None] * C + best).reshape(-1)
    x = x[rows]
    obs = tuple(t[rows] for t in obs)
    n = cfg.iterations
    ratio = cfg.robust_px / cfg.robust_start_px
    scales = [cfg.robust_start_px * ratio ** min(1.0, i / max(1, n // 2)) for i in range(n)]
    x, cost, kp, w = solve(x, obs, n, False, scales)
    pick = cost.reshape(B, keep).argmin(dim=1)
    rows = torch.arange(B, device=device) * keep + pick
    return x[rows], cost[rows], kp[rows], w[rows]


def warmup(model: HandModel, K: torch.Tensor, config: FitConfig | None = None, landmarks: bool = True) -> FitResult:
    """A cold then a warm fit of a made-up observation (the model's mean hand 0.5 m ahead, seen through ``K``):
    torch and the numba kernels load their code on a process's first call (~0.5 s in all for a cold fit), which
    belongs in a stage's setup, not in the first frame of a stream. Returns the warm fit."""
    dtype = model.dtype
    p = model.zero_params(1)
    p.hand_pose = model.pose_prior.mean_pose().to(dtype)[None]
    p.transl = torch.tensor([[0.0, 0.0, 0.5]], dtype=dtype)
    with torch.no_grad():
        kp = model.pose(p, with_vertices=False).keypoints
    K = torch.as_tensor(K, dtype=dtype)
    uv = project(kp, K[None])
    conf = torch.ones(1, 21, dtype=dtype)
    lm = kp - kp[:, :1] if landmarks else None
    first = fit_keypoints(model, uv, conf, K, lm, None, config)
    return fit_keypoints(model, uv, conf, K, lm, first.params, config)
