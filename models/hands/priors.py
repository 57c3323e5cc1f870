"""Anatomical joint limits and a pose prior, both usable as least-squares residuals.

Both act on the anatomical coordinates of each finger joint: the axis-angle vector
of its rotation expressed in its anatomical frame (``geometry.anatomical_frames``),
components (flexion, twist, deviation), with twist and deviation negated on left
hands (mirror images) so that one table serves both sides. A model maps its own pose parameters to
these coordinates with a fixed (P, 3, 3) matrix per joint, so MANO (world-aligned
parameters) and anny (bone-frame parameters) share the tables.

Ranges (degrees) follow the clinical active ranges of motion of the finger joints
(flexion positive, hyperextension negative), with small twist and deviation for
hinge joints and wider ranges for the thumb's saddle joint; the prior is a diagonal
Gaussian around a relaxed, slightly flexed hand plus the DIP-PIP flexion coupling
(DIP flexion about two thirds of PIP flexion).
"""

from __future__ import annotations

import math

import torch

# kind -> per axis (flexion, twist, deviation): (lower, upper, mean, std), degrees
_TABLE: dict[str, tuple[tuple[float, float, float, float], ...]] = {
    "mcp": ((-30, 90, 15, 30), (-12, 12, 0, 5), (-25, 25, 0, 10)),
    "pip": ((-8, 110, 20, 35), (-6, 6, 0, 3), (-6, 6, 0, 3)),
    "dip": ((-12, 90, 12, 25), (-6, 6, 0, 3), (-6, 6, 0, 3)),
    "metacarpal_index": ((-4, 4, 0, 2), (-4, 4, 0, 2), (-4, 4, 0, 2)),
    "metacarpal_middle": ((-4, 4, 0, 2), (-4, 4, 0, 2), (-4, 4, 0, 2)),
    "metacarpal_ring": ((-4, 15, 2, 4), (-8, 8, 0, 3), (-5, 5, 0, 2)),
    "metacarpal_little": ((-4, 25, 3, 6), (-10, 10, 0, 4), (-8, 8, 0, 3)),
    "thumb_cmc": ((-30, 50, 0, 20), (-30, 30, 0, 12), (-40, 40, 0, 18)),
    "thumb_mcp": ((-20, 70, 10, 25), (-15, 15, 0, 6), (-15, 15, 0, 6)),
    "thumb_ip": ((-25, 90, 10, 30), (-8, 8, 0, 3), (-8, 8, 0, 3)),
}
JOINT_KINDS: tuple[str, ...] = tuple(_TABLE)
DIP_PIP_RATIO = 2.0 / 3.0
COUPLING_STD_DEG = 15.0
LIMIT_TOLERANCE_DEG = 1.0
"""Joint-limit residuals are the violation divided by this (1 per degree outside)."""


def _table(kinds: tuple[str, ...]) -> torch.Tensor:
    """(P, 3, 4) radians: lower, upper, mean, std per joint and axis."""
    unknown = [k for k in kinds if k not in _TABLE]
    if unknown:
        raise ValueError(f"unknown joint kinds {unknown}; known: {JOINT_KINDS}")
    return torch.tensor([_TABLE[k] for k in kinds], dtype=torch.float64) * (math.pi / 180.0)


class _AnatomicalTerm(torch.nn.Module):
    """Base: holds the map from pose parameters to anatomical coordinates."""

    def __init__(self, kinds: tuple[str, ...], to_anatomical: torch.Tensor) -> None:
        super().__init__()
        self.kinds = tuple(kinds)
        self.register_buffer("to_anatomical", to_anatomical.to(torch.float64))

    def anatomical(self, hand_pose: torch.Tensor) -> torch.Tensor:
        """(B, P, 3) pose parameters -> (B, P, 3) (flexion, twist, deviation), radians."""
        return torch.einsum("pij,bpj->bpi", self.to_anatomical, hand_pose)

    def from_anatomical(self, angles: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`anatomical` (the maps are orthogonal)."""
        return torch.einsum("pji,bpj->bpi", self.to_anatomical, angles)


class JointLimits(_AnatomicalTerm):
    """Box limits on the anatomical coordinates of every joint."""

    def __init__(self, kinds: tuple[str, ...], to_anatomical: torch.Tensor) -> None:
        super().__init__(kinds, to_anatomical)
        table = _table(kinds)
        self.register_buffer("lower", table[..., 0])
        self.register_buffer("upper", table[..., 1])

    def violation(self, hand_pose: torch.Tensor) -> torch.Tensor:
        """(B, P, 3) radians outside the limits (0 inside)."""
        a = self.anatomical(hand_pose)
        return torch.relu(self.lower - a) + torch.relu(a - self.upper)

    def residual(self, hand_pose: torch.Tensor) -> torch.Tensor:
        """(B, P * 3) violation in units of ``LIMIT_TOLERANCE_DEG``."""
        v = self.violation(hand_pose)
        return v.flatten(1) * (180.0 / math.pi / LIMIT_TOLERANCE_DEG)

    def jacobian(self, hand_pose: torch.Tensor) -> torch.Tensor:
        """(B, 3 P, 3 P) Jacobian of :meth:`residual` with respect to the flattened pose."""
        a = self.anatomical(hand_pose)
        sign = (a > self.upper).to(a.dtype) - (a < self.lower).to(a.dtype)  # (B, P, 3)
        block = sign[..., None] * self.to_anatomical * (180.0 / math.pi / LIMIT_TOLERANCE_DEG)  # (B, P, 3, 3)
        B, P = block.shape[:2]
        eye = torch.eye(P, dtype=a.dtype, device=a.device)
        return torch.einsum("bjil,jk->bjikl", block, eye).reshape(B, 3 * P, 3 * P)

    def clamp(self, hand_pose: torch.Tensor) -> torch.Tensor:
        """The pose with every anatomical coordinate clamped into its range."""
        a = self.anatomical(hand_pose)
        return self.from_anatomical(torch.maximum(torch.minimum(a, self.upper), self.lower))


class PosePrior(_AnatomicalTerm):
    """Diagonal Gaussian on the anatomical coordinates plus the DIP-PIP coupling."""

    def __init__(self, kinds: tuple[str, ...], to_anatomical: torch.Tensor) -> None:
        super().__init__(kinds, to_anatomical)
        table = _table(kinds)
        self.register_buffer("mean", table[..., 2])
        self.register_buffer("std", table[..., 3])
        pip = [i for i, k in enumerate(kinds) if k == "pip"]
        dip = [i for i, k in enumerate(kinds) if k == "dip"]
        if len(pip) != len(dip):
            raise ValueError("every PIP joint needs a DIP joint")
        self.pip_dip = (tuple(pip), tuple(dip))

    @property
    def num_residuals(self) -> int:
        return 3 * len(self.kinds) + len(self.pip_dip[0])

    def residual(self, hand_pose: torch.Tensor) -> torch.Tensor:
        """(B, 3 P + n_dip) standardized deviations (negative log-density = half the sum of squares)."""
        a = self.anatomical(hand_pose)
        gauss = ((a - self.mean) / self.std).flatten(1)
        pip, dip = self.pip_dip
        coupling = (a[:, list(dip), 0] - DIP_PIP_RATIO * a[:, list(pip), 0]) * (180.0 / math.pi / COUPLING_STD_DEG)
        return torch.cat([gauss, coupling], dim=1)

    def jacobian(self) -> torch.Tensor:
        """(3 P + n_dip, 3 P) Jacobian of :meth:`residual` (constant: the residual is linear)."""
        key = (self.to_anatomical.dtype, self.to_anatomical.device, self.to_anatomical.data_ptr())
        cached = self.__dict__.get("_jacobian")
        if cached is not None and cached[0] == key:
            return cached[1]
        P = len(self.kinds)
        rows = (self.to_anatomical / self.std[..., None]).unbind(0)
        gauss = torch.block_diag(*rows)  # (3 P, 3 P)
        pip, dip = self.pip_dip
        coupling = gauss.new_zeros(len(pip), P, 3)
        scale = 180.0 / math.pi / COUPLING_STD_DEG
        for r, (i, d) in enumerate(zip(pip, dip)):
            coupling[r, d] += scale * self.to_anatomical[d, 0]
            coupling[r, i] -= scale * DIP_PIP_RATIO * self.to_anatomical[i, 0]
        jac = torch.cat([gauss, coupling.reshape(len(pip), 3 * P)], dim=0)
        self.__dict__["_jacobian"] = (key, jac)
        return jac

    def mean_pose(self) -> torch.Tensor:
        """(P, 3) the prior's mean in the model's pose parameters."""
        return self.from_anatomical(self.mean[None])[0]

    def sample(self, n: int, generator: torch.Generator | None = None, spread: float = 1.0,
               limits: JointLimits | None = None) -> torch.Tensor:
        """(n, P, 3) poses drawn from the diagonal Gaussian (``spread`` times its std),
        clamped into ``limits`` if given. For tests and benchmarks."""
        noise = torch.randn((n,) + tuple(self.mean.shape), generator=generator, dtype=torch.float64)
        a = self.mean.double() + spread * self.std.double() * noise
        pose = self.from_anatomical(a.to(self.mean.dtype))
        return limits.clamp(pose) if limits is not None else pose
