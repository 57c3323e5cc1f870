"""What every cost term of the window objective shares: the evaluation it reads and the block it returns.

The window's unknowns are one parameter vector per frame slot, ``x_s = [global
rotation (3), joint rotations (3 P), translation (3)]`` in the camera frame, and
one shape vector ``betas`` (S) shared by all slots of a hand. A term sees the
current :class:`Evaluation` (keypoints, sampled vertices and their Jacobians per
slot) and the window's :class:`WindowData`, and returns a :class:`Block`:
residual groups, the slots each group touches and the Jacobian with respect to
those slots' local parameters ``[x_s, betas]`` (L = n + S columns). The solver
adds ``J^T J`` and ``J^T r`` of every block into the normal equations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class Block:
    """Residuals of one term: ``res`` (B, R), ``slots`` (B, k) long, ``jac`` (B, k, R, L)."""

    res: torch.Tensor
    slots: torch.Tensor
    jac: torch.Tensor | None

    @property
    def cost(self) -> torch.Tensor:
        return (self.res * self.res).sum()


@dataclass
class Evaluation:
    """The hand of every slot at the current estimate (camera frame, metres).

    Jacobian columns are the slot's local parameters ``[x_s (n), betas (S)]``.
    """

    x: torch.Tensor
    """(T, n) per-slot parameters."""
    betas: torch.Tensor
    """(S,) shared shape."""
    kp: torch.Tensor
    """(T, 21, 3) keypoints."""
    kp_jac: torch.Tensor | None
    """(T, 21, 3, L)."""
    verts: torch.Tensor | None = None
    """(T, M, 3) the sampled vertices (``WindowData.vertex_ids``)."""
    verts_jac: torch.Tensor | None = None
    """(T, M, 3, L)."""
    pose: torch.Tensor | None = None
    """(T, P, 3) joint rotations."""


@dataclass
class WindowData:
    """Observations and context of one hand's window (T slots, the first ``fixed`` of them held fixed)."""

    rows: np.ndarray
    """(T,) store row of each slot (consecutive rows are neighbours in time)."""
    fixed: int
    """Leading slots already decided (kept fixed; they anchor the temporal terms)."""
    uv: torch.Tensor
    """(T, 21, 2) observed 2D keypoints, pixels (0 where missing)."""
    conf: torch.Tensor
    """(T, 21) their confidence (0: missing or fixed slot)."""
    landmarks: torch.Tensor
    """(T, 21, 3) detector's relative 3D keypoints (0 where missing)."""
    lm_weight: torch.Tensor
    """(T, 21) sqrt-weights of the landmark term (0 where missing)."""
    K: torch.Tensor
    """(3, 3) intrinsics."""
    vertex_ids: torch.Tensor
    """(M,) hand vertices sampled for the contact and penetration terms."""
    T_cam_obj: torch.Tensor | None = None
    """(T, 4, 4) object pose per slot (NaN where unknown), or None without an object."""
    in_contact: torch.Tensor | None = None
    """(T,) bool contact label per slot."""
    contact_slot: torch.Tensor | None = None
    """(C,) slot of each lifted contact."""
    contact_vertex: torch.Tensor | None = None
    """(C,) position in ``vertex_ids`` of each lifted contact's hand vertex."""
    contact_target: torch.Tensor | None = None
    """(C, 3) its target on the object's surface, camera frame."""
    sdf: object | None = None
    """The object's SDF grid (``inscene.kernels.SDFGrid``), object frame."""
    betas_prior: torch.Tensor | None = None
    """(S,) running shape estimate of this hand."""
    steps: np.ndarray | None = None
    """(T,) time from the slot before to each slot, in nominal frame intervals (1 for a steady source; more
    where a live source dropped frames), or None: every step is one frame."""
    extras: dict = field(default_factory=dict)


def neighbours(rows: np.ndarray, span: int) -> np.ndarray:
    """(G, span) slot indices of every run of ``span`` consecutive rows (rows[s + i] = rows[s] + i)."""
    T = len(rows)
    if T < span:
        return np.zeros((0, span), np.int64)
    starts = np.arange(T - span + 1)
    ok = np.all(rows[starts[:, None] + np.arange(span)] == rows[starts, None] + np.arange(span), axis=1)
    return starts[ok][:, None] + np.arange(span)


class CostTerm:
    """A residual term: ``name``, ``weight``; :meth:`block` returns its residuals (or None when inactive)."""

    name = "term"
    needs_vertices = False

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = float(weight)

    @property
    def active(self) -> bool:
        return self.weight > 0

    def prepare(self, ev: Evaluation, data: WindowData) -> None:
        """Called once per LM iteration at the accepted estimate (e.g. to fix IRLS weights)."""

    def block(self, ev: Evaluation, data: WindowData, jacobian: bool = True) -> Block | None:
        raise NotImplementedError
