"""Robust 2D keypoint reprojection: Geman-McClure through iteratively reweighted least squares."""

from __future__ import annotations

import torch

from .base import Block, CostTerm, Evaluation, WindowData


def project_with_jacobian(points: torch.Tensor, K: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pinhole projection of (..., 3) points and its derivative (..., 2, 3)."""
    hom = points @ K.T
    depth = hom[..., 2:3].clamp_min(1e-4)
    uv = hom[..., :2] / depth
    d = (K[:2, :] - uv[..., None] * K[2:3, :]) / depth[..., None]
    return uv, d


class Reprojection(CostTerm):
    """``sqrt(w) (project(k) - uv) / sigma_px`` per keypoint, w = confidence x Geman-McClure weight.

    The robust weights are fixed at the start of a window solve (:meth:`prepare`). The
    Geman-McClure scale of a slot is ``robust_px`` or twice the slot's median error,
    whichever is larger: a keypoint far from the others' agreement is an outlier, but a
    whole hand that is off (a new frame, a jump) still pulls back.
    """

    name = "reprojection"

    def __init__(self, weight: float = 1.0, sigma_px: float = 2.0, robust_px: float = 12.0) -> None:
        super().__init__(weight)
        self.sigma_px, self.robust_px = sigma_px, robust_px
        self.sqrt_w: torch.Tensor | None = None

    def prepare(self, ev: Evaluation, data: WindowData) -> None:
        uv, _ = project_with_jacobian(ev.kp, data.K)
        err = (uv - data.uv).norm(dim=-1)
        seen = data.conf > 0
        med = torch.where(seen, err, torch.nan).nanmedian(dim=1).values.nan_to_num(0.0)
        s2 = torch.clamp(2.0 * med, min=self.robust_px)[:, None] ** 2
        self.sqrt_w = (data.conf * (s2 / (s2 + err * err)) ** 2).sqrt()

    def robust_cost(self, ev: Evaluation, data: WindowData) -> torch.Tensor:
        """The Geman-McClure objective itself (not the reweighted one), for reporting."""
        uv, _ = project_with_jacobian(ev.kp, data.K)
        e2 = ((uv - data.uv) ** 2).sum(-1)
        s2 = self.robust_px ** 2
        return self.weight * (data.conf * s2 * e2 / (s2 + e2)).sum() / self.sigma_px ** 2

    def block(self, ev: Evaluation, data: WindowData, jacobian: bool = True) -> Block | None:
        if self.sqrt_w is None:
            self.prepare(ev, data)
        T = ev.kp.shape[0]
        uv, d = project_with_jacobian(ev.kp, data.K)
        w = (self.sqrt_w * (self.weight ** 0.5 / self.sigma_px))[..., None]  # (T, 21, 1)
        res = ((uv - data.uv) * w).reshape(T, 42)
        slots = torch.arange(T)[:, None]
        jac = None
        if jacobian:
            jac = ((d @ ev.kp_jac) * w[..., None]).reshape(T, 1, 42, -1)
        return Block(res, slots, jac)
