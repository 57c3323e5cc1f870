"""Temporal smoothness: keypoint acceleration and velocity over consecutive frames.

Both are measured at a reference depth: a finite difference of keypoints is
multiplied by ``Z_REF / z`` (z the mean keypoint depth of the group's last slot at
the current estimate, differentiated too). Metric motion of a hand seen in the
image grows with its depth, so unscaled terms would pull every hand towards the
camera (smaller motion in metres for the same pixels); scaled, they do not care
about depth, and the contact and 2D terms decide it.
"""

from __future__ import annotations

import torch

from .base import Block, CostTerm, Evaluation, WindowData, neighbours

Z_REF = 0.5
"""Depth (m) at which the smoothness scales are stated."""


def finite_difference(ev: Evaluation, groups: torch.Tensor, coeffs: tuple[float, ...], scale: float,
                      jacobian: bool) -> Block:
    """``scale * (Z_REF / z) * sum_i c_i k[slot_i]`` over the 21 keypoints for every group of slots (G, m).

    ``z`` is the mean keypoint depth of the group's last slot.
    """
    c = torch.tensor(coeffs, dtype=ev.kp.dtype)
    G, m = groups.shape
    z = ev.kp[groups[:, -1], :, 2].mean(-1).clamp_min(0.05)  # (G,)
    f = scale * Z_REF / z
    diff = torch.einsum("i,gikx->gkx", c, ev.kp[groups]).reshape(G, 63)
    res = diff * f[:, None]
    jac = None
    if jacobian:
        jac = ev.kp_jac[groups] * (c[None, :, None, None, None] * f[:, None, None, None, None])
        jac = jac.reshape(G, m, 63, -1).clone()
        dz = ev.kp_jac[groups[:, -1], :, 2].mean(1)  # (G, L)
        jac[:, -1] -= (res / z[:, None])[:, :, None] * dz[:, None, :]
    return Block(res, groups, jac)


class _Difference(CostTerm):
    """A finite difference of the keypoints over consecutive frames (``coeffs``), divided by ``sigma``."""

    coeffs: tuple[float, ...] = ()

    def __init__(self, weight: float, sigma: float) -> None:
        super().__init__(weight)
        self.sigma = sigma

    def block(self, ev: Evaluation, data: WindowData, jacobian: bool = True) -> Block | None:
        groups = torch.from_numpy(neighbours(data.rows, len(self.coeffs)))
        if len(groups) == 0:
            return None
        return finite_difference(ev, groups, self.coeffs, self.weight ** 0.5 / self.sigma, jacobian)


class Acceleration(_Difference):
    """``(k[t+1] - 2 k[t] + k[t-1]) / sigma_accel`` per keypoint (the jitter the benchmark measures)."""

    name = "acceleration"
    coeffs = (1.0, -2.0, 1.0)

    def __init__(self, weight: float = 1.0, sigma: float = 0.004) -> None:
        super().__init__(weight, sigma)


class Velocity(_Difference):
    """``(k[t] - k[t-1]) / sigma_velocity`` per keypoint (a weak pull towards rest)."""

    name = "velocity"
    coeffs = (-1.0, 1.0)

    def __init__(self, weight: float = 1.0, sigma: float = 0.03) -> None:
        super().__init__(weight, sigma)
