"""Contact: lifted contact points pull the hand's contact vertices onto the object's surface."""

from __future__ import annotations

import torch

from .base import Block, CostTerm, Evaluation, WindowData


class Contact(CostTerm):
    """``(v - p) / sigma_contact`` for every lifted contact (hand vertex v, its target p on the object).

    The targets come from contact lifting (``engine/contact/lifting.py``) at the
    start of each window solve and stay fixed while it iterates.
    """

    name = "contact"
    needs_vertices = True

    def __init__(self, weight: float = 1.0, sigma: float = 0.004, robust: float = 0.005, per_frame: int = 16) -> None:
        super().__init__(weight)
        self.sigma, self.robust, self.per_frame = sigma, robust, per_frame
        self.sqrt_w: torch.Tensor | None = None

    def prepare(self, ev: Evaluation, data: WindowData) -> None:
        """Robust (Geman-McClure) weights at the current estimate, and a per-frame share: a frame's
        contacts together weigh as much as ``per_frame`` contacts, however many were lifted."""
        if data.contact_slot is None or len(data.contact_slot) == 0:
            self.sqrt_w = None
            return
        slot, vert = data.contact_slot, data.contact_vertex
        err = (ev.verts[slot, vert] - data.contact_target.to(ev.verts)).norm(dim=-1)
        s2 = self.robust ** 2
        count = torch.bincount(slot, minlength=ev.x.shape[0]).to(err)[slot]
        share = (self.per_frame / count).clamp(max=1.0)
        self.sqrt_w = ((s2 / (s2 + err * err)) ** 2 * share).sqrt()

    def block(self, ev: Evaluation, data: WindowData, jacobian: bool = True) -> Block | None:
        if data.contact_slot is None or len(data.contact_slot) == 0:
            return None
        if self.sqrt_w is None or len(self.sqrt_w) != len(data.contact_slot):
            self.prepare(ev, data)
        s = (self.weight ** 0.5 / self.sigma) * self.sqrt_w[:, None]
        slot, vert = data.contact_slot, data.contact_vertex
        r = (ev.verts[slot, vert] - data.contact_target.to(ev.verts)) * s  # (C, 3)
        # one residual group per slot (its contacts side by side, zero-padded): the normal
        # equations then take one product per slot, not one per contact
        slots, group = torch.unique(slot, return_inverse=True)
        count = torch.bincount(group)
        first = torch.cumsum(count, 0) - count
        pos = torch.arange(len(slot)) - first[group]
        width = int(count.max())
        res = r.new_zeros(len(slots), width, 3)
        res[group, pos] = r
        jac = None
        if jacobian:
            jac = r.new_zeros(len(slots), width, 3, ev.verts_jac.shape[-1])
            jac[group, pos] = ev.verts_jac[slot, vert] * s[:, :, None]
            jac = jac.reshape(len(slots), 1, width * 3, -1)
        return Block(res.reshape(len(slots), width * 3), slots[:, None], jac)
