"""Pose prior and joint limits of the hand model, per slot; the shape prior and the running shape."""

from __future__ import annotations

import torch

from .base import Block, CostTerm, Evaluation, WindowData


class PosePrior(CostTerm):
    """The model's pose prior (standardized) and joint-limit violations on every slot's joint rotations."""

    name = "pose_prior"

    def __init__(self, model, weight: float = 1.0) -> None:
        super().__init__(weight)
        self.model = model
        self.P = model.num_pose_joints

    def block(self, ev: Evaluation, data: WindowData, jacobian: bool = True) -> Block | None:
        T, L = ev.x.shape[0], ev.x.shape[1] + ev.betas.shape[0]
        pose = ev.pose
        s = self.weight ** 0.5
        r_prior = self.model.pose_prior.residual(pose) * s
        r_lim = self.model.joint_limits.residual(pose) * s
        res = torch.cat([r_prior, r_lim], dim=1)
        jac = None
        if jacobian:
            cols = slice(3, 3 + 3 * self.P)
            jac = ev.x.new_zeros(T, 1, res.shape[1], L)
            jac[:, 0, :r_prior.shape[1], cols] = self.model.pose_prior.jacobian().to(ev.x) * s
            jac[:, 0, r_prior.shape[1]:, cols] = self.model.joint_limits.jacobian(pose) * s
        return Block(res, torch.arange(T)[:, None], jac)


class ShapePrior(CostTerm):
    """One shape per hand over time: the model's shape prior, and the running estimate as a soft anchor.

    ``betas / std`` keeps the shape plausible; ``(betas - running) / (shape_sigma std)``
    keeps a window from moving the hand's shape far from what earlier windows found.
    """

    name = "shape"

    def __init__(self, model, weight: float = 1.0, shape_sigma: float = 0.05) -> None:
        super().__init__(weight)
        self.model, self.shape_sigma = model, shape_sigma

    def block(self, ev: Evaluation, data: WindowData, jacobian: bool = True) -> Block | None:
        n, S = ev.x.shape[1], ev.betas.shape[0]
        std = self.model.beta_std.to(ev.x)
        s = self.weight ** 0.5
        res = [ev.betas / std * s]
        diag = [s / std]
        if data.betas_prior is not None:
            res.append((ev.betas - data.betas_prior) / (self.shape_sigma * std) * s)
            diag.append(s / (self.shape_sigma * std))
        r = torch.cat(res)[None]
        jac = None
        if jacobian:
            jac = ev.x.new_zeros(1, 1, r.shape[1], n + S)
            for i, d in enumerate(diag):
                jac[0, 0, i * S:(i + 1) * S, n:] = torch.diag(d)
        slot = torch.full((1, 1), data.fixed if data.fixed < ev.x.shape[0] else 0, dtype=torch.long)
        return Block(r, slot, jac)
