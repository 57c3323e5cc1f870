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

    def __init__(self, weight: float = 1.0, sigma: float = 0.004) -> None:
        super().__init__(weight)
        self.sigma = sigma

    def block(self, ev: Evaluation, data: WindowData, jacobian: bool = True) -> Block | None:
        if data.contact_slot is None or len(data.contact_slot) == 0:
            return None
        s = self.weight ** 0.5 / self.sigma
        slot, vert = data.contact_slot, data.contact_vertex
        res = (ev.verts[slot, vert] - data.contact_target.to(ev.verts)) * s  # (C, 3)
        jac = ev.verts_jac[slot, vert][:, None] * s if jacobian else None  # (C, 1, 3, L)
        return Block(res, slot[:, None], jac)
