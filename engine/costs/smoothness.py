"""Temporal smoothness: keypoint acceleration and velocity over consecutive frames.

Both are measured at a reference depth: a finite difference of keypoints is
multiplied by ``Z_REF / z`` (z the mean keypoint depth of the group's last slot at
the current estimate, differentiated too). Metric motion of a hand seen in the
image grows with its depth, so unscaled terms would pull every hand towards the
camera (smaller motion in metres for the same pixels); scaled, they do not care
about depth, and the contact and 2D terms decide it.

Differences are taken per nominal frame interval: where a live source dropped
frames, consecutive slots lie more than one frame apart (``WindowData.steps``) and
the divided differences for unequal steps apply, so a hand moving steadily costs
nothing however its frames are spaced.
"""

from __future__ import annotations

import numpy as np
import torch

from .base import Block, CostTerm, Evaluation, WindowData, neighbours

Z_REF = 0.5
"""Depth (m) at which the smoothness scales are stated."""


def finite_difference(ev: Evaluation, groups: torch.Tensor, coeffs: tuple[float, ...] | torch.Tensor, scale: float,
                      jacobian: bool) -> Block:
    """``scale * (Z_REF / z) * sum_i c_i k[slot_i]`` over the 21 keypoints for every group of slots (G, m).

    ``z`` is the mean keypoint depth of the group's last slot; ``coeffs`` are the same for every
    group (m,) or per group (G, m).
    """
    G, m = groups.shape
    c = torch.as_tensor(coeffs, dtype=ev.kp.dtype).expand(G, m)
    z = ev.kp[groups[:, -1], :, 2].mean(-1).clamp_min(0.05)  # (G,)
    f = scale * Z_REF / z
    diff = torch.einsum("gi,gikx->gkx", c, ev.kp[groups]).reshape(G, 63)
    res = diff * f[:, None]
    jac = None
    if jacobian:
        jac = ev.kp_jac[groups] * (c[:, :, None, None, None] * f[:, None, None, None, None])
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
        groups = neighbours(data.rows, len(self.coeffs))
        if len(groups) == 0:
            return None
        coeffs = self.coeffs if data.steps is None else self.uneven(np.asarray(data.steps, np.float64)[groups])
        return finite_difference(ev, torch.from_numpy(groups), coeffs, self.weight ** 0.5 / self.sigma, jacobian)

    @staticmethod
    def uneven(steps: np.ndarray) -> torch.Tensor:
        """(G, m) coefficients of the difference for slots ``steps`` (G, m) frame intervals apart."""
        raise NotImplementedError


class Acceleration(_Difference):
    """``(k[t+1] - 2 k[t] + k[t-1]) / sigma_accel`` per keypoint (the jitter the benchmark measures)."""

    name = "acceleration"
    coeffs = (1.0, -2.0, 1.0)

    def __init__(self, weight: float = 1.0, sigma: float = 0.004) -> None:
        super().__init__(weight, sigma)

    @staticmethod
    def uneven(steps: np.ndarray) -> torch.Tensor:
        """The second divided difference at unequal steps ``h1, h2`` (``steps[:, 1:]``) in frame-step units,
        ``2 / (h1 + h2) * (k0 / h1 - k1 (1 / h1 + 1 / h2) + k2 / h2)``: (1, -2, 1) at steps of one frame,
        zero for a keypoint moving at constant speed however its frames are spaced."""
        h1, h2 = steps[:, 1], steps[:, 2]
        a = 2.0 / (h1 + h2)
        return torch.from_numpy(np.stack([a / h1, -a * (1.0 / h1 + 1.0 / h2), a / h2], axis=1))


class Velocity(_Difference):
    """``(k[t] - k[t-1]) / sigma_velocity`` per keypoint (a weak pull towards rest)."""

    name = "velocity"
    coeffs = (-1.0, 1.0)

    def __init__(self, weight: float = 1.0, sigma: float = 0.03) -> None:
        super().__init__(weight, sigma)

    @staticmethod
    def uneven(steps: np.ndarray) -> torch.Tensor:
        """``(k1 - k0) / h`` for slots ``h`` frame steps apart."""
        h = steps[:, 1]
        return torch.from_numpy(np.stack([-1.0 / h, 1.0 / h], axis=1))
