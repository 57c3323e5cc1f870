"""Hand-object relative rigidity while grasped: the hand does not slide on the object."""

from __future__ import annotations

import torch

from .base import Block, CostTerm, Evaluation, WindowData, neighbours


class Rigidity(CostTerm):
    """``(R_t^T (k_t - o_t) - R_{t-1}^T (k_{t-1} - o_{t-1})) / sigma_rigid`` for consecutive contact frames.

    The palm (wrist and the four finger bases) expressed in the object's frame stays
    put while the hand holds the object (``T_cam_obj`` = [R | o] per frame, from the
    object tracker); the fingers may still close or adjust.
    """

    PALM = (0, 5, 9, 13, 17)

    name = "rigidity"

    def __init__(self, weight: float = 1.0, sigma: float = 0.003) -> None:
        super().__init__(weight)
        self.sigma = sigma

    def block(self, ev: Evaluation, data: WindowData, jacobian: bool = True) -> Block | None:
        if data.T_cam_obj is None or data.in_contact is None:
            return None
        pairs = torch.from_numpy(neighbours(data.rows, 2))
        if len(pairs) == 0:
            return None
        ok = data.in_contact[pairs].all(1) & torch.isfinite(data.T_cam_obj[pairs]).flatten(1).all(1)
        pairs = pairs[ok]
        if len(pairs) == 0:
            return None
        T = data.T_cam_obj.to(ev.kp.dtype)
        R, o = T[pairs, :3, :3], T[pairs, :3, 3]  # (G, 2, 3, 3), (G, 2, 3)
        s = self.weight ** 0.5 / self.sigma
        palm = list(self.PALM)
        kp = ev.kp[:, palm]
        local = torch.einsum("gayx,gaky->gakx", R, kp[pairs] - o[:, :, None])  # R^T (k - o)
        G, Kp = len(pairs), len(palm)
        res = ((local[:, 1] - local[:, 0]) * s).reshape(G, 3 * Kp)
        jac = None
        if jacobian:
            j = torch.einsum("gayx,gakyl->gakxl", R, ev.kp_jac[:, palm][pairs]) * s  # (G, 2, Kp, 3, L)
            jac = torch.stack([-j[:, 0], j[:, 1]], dim=1).reshape(G, 2, 3 * Kp, -1)
        return Block(res, pairs, jac)
