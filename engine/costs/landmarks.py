"""Relative 3D joint shape: the fitted keypoints about their mean against the detector's relative 3D keypoints."""

from __future__ import annotations

import torch

from .base import Block, CostTerm, Evaluation, WindowData


class Landmarks(CostTerm):
    """``sqrt(conf) ((k - mean k) - c (l - mean l)) / sigma_3d`` per keypoint (translation- and scale-free).

    The detector's relative 3D keypoints carry its own guess of the hand's size,
    which is as uncertain as monocular depth; ``c`` rescales them per slot to the
    size of the current estimate (fixed while a window is solved), so this term
    shapes the hand but leaves its size to the shape prior and the object contacts.
    """

    name = "landmarks"

    def __init__(self, weight: float = 1.0, sigma_3d: float = 0.01) -> None:
        super().__init__(weight if sigma_3d > 0 else 0.0)
        self.sigma_3d = sigma_3d

    @staticmethod
    def difference(kp: torch.Tensor, data: WindowData) -> torch.Tensor:
        """(T, 21, 3) the keypoints ``kp`` about their mean minus the detector's, rescaled (unweighted, metres)."""
        lm = data.landmarks - data.landmarks.mean(1, keepdim=True)
        scale = data.extras.get("landmark_scale")
        if scale is not None:
            lm = lm * scale.to(lm)[:, None, None]
        return kp - kp.mean(1, keepdim=True) - lm

    def block(self, ev: Evaluation, data: WindowData, jacobian: bool = True) -> Block | None:
        T = ev.kp.shape[0]
        w = (data.lm_weight * (self.weight ** 0.5 / self.sigma_3d))[..., None]  # (T, 21, 1)
        res = (self.difference(ev.kp, data) * w).reshape(T, 63)
        jac = None
        if jacobian:
            j = ev.kp_jac - ev.kp_jac.mean(1, keepdim=True)
            jac = (j * w[..., None]).reshape(T, 1, 63, -1)
        return Block(res, torch.arange(T)[:, None], jac)
