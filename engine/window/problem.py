"""One hand's window as a least-squares problem, and the Levenberg-Marquardt solve over it.

Unknowns: ``x_s`` (n = 3 + 3 P + 3: global rotation, joint rotations, translation,
camera frame) for every free slot and one shared ``betas`` (S). Every cost term
returns a :class:`~inscene.engine.costs.base.Block`; the normal equations are
assembled block by block (a term touches one slot, or a few neighbouring slots
for the temporal terms), so building them costs O(T) small matrix products,
not a product of the dense (R, T n) Jacobian. The system is solved by Cholesky
in float64; the hand model is evaluated in its own dtype (float32 by default).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from inscene.models.hands.jacobian import keypoints_and_jacobian_fast, pose_fast, vertices_fast
from inscene.models.hands.params import HandParams

from ..costs.base import Block, CostTerm, Evaluation, WindowData
from .banded import BANDWIDTH, BandedSystem

_UPPER = {k: tuple(torch.tensor(v) for v in zip(*[(a, b) for a in range(k) for b in range(a, k)]))
          for k in range(1, 4)}
"""Slot pairs (a <= b) of a residual group touching k slots."""
ACTIVE_MARGIN = 0.005
"""Sampled vertices closer than this to the object's surface (metres) get Jacobian rows."""


@dataclass
class SolveInfo:
    """What one window solve did."""

    iterations: int
    accepted: int
    cost_start: float
    cost_end: float
    terms: dict[str, float]
    """Final cost per term."""


class WindowProblem:
    """The window objective of one hand model (built once, re-fed with each window's data)."""

    def __init__(self, model, terms: list[CostTerm], damping: float = 1e-3) -> None:
        self.model = model
        self.terms = [t for t in terms if t.active]
        self.P, self.S = model.num_pose_joints, model.num_betas
        self.n = 3 + 3 * self.P + 3
        self.damping = damping
        self.needs_vertices = any(t.needs_vertices for t in self.terms)
        P, S = self.P, self.S
        # model Jacobian columns [go, pose, betas, transl] -> local [go, pose, transl, betas]
        self._perm = torch.tensor(list(range(3 + 3 * P)) + list(range(3 + 3 * P + S, 6 + 3 * P + S))
                                  + list(range(3 + 3 * P, 3 + 3 * P + S)))

    # ------------------------------------------------------------- evaluation
    def params(self, x: torch.Tensor, betas: torch.Tensor) -> HandParams:
        T = x.shape[0]
        return HandParams(x[:, :3], x[:, 3:3 + 3 * self.P].reshape(T, self.P, 3), betas[None].expand(T, -1),
                          x[:, -3:])

    def evaluate(self, x: torch.Tensor, betas: torch.Tensor, data: WindowData, jacobian: bool = True,
                 fixed_kp: torch.Tensor | None = None) -> Evaluation:
        """The hand at ``x`` (T, n), ``betas`` (S,); fixed slots take ``fixed_kp`` and no Jacobian."""
        model = self.model
        x, betas = x.to(model.dtype), betas.to(model.dtype)
        p = self.params(x, betas)
        verts = vjac = None
        if jacobian:
            kp, jk = keypoints_and_jacobian_fast(model, p)
            jk = jk[..., self._perm]
            if self.needs_vertices:
                verts = self._vertices(p, data)
                vjac = self._vertex_jacobian(p, verts, data)
        elif not (x.requires_grad or betas.requires_grad):  # the numba kernel (no autograd)
            jk = None
            ids = data.vertex_ids.numpy() if self.needs_vertices else None
            kp_np, v_np = pose_fast(model, p, self.needs_vertices, ids)
            kp = torch.from_numpy(kp_np).to(model.dtype)
            if v_np is not None:
                verts = torch.from_numpy(v_np).to(model.dtype)
        else:  # differentiable (the tests' autograd twins)
            jk = None
            out = model.pose(p, with_vertices=self.needs_vertices)
            kp = out.keypoints
            if self.needs_vertices:
                verts = out.vertices[:, data.vertex_ids]
        f = data.fixed
        if f and fixed_kp is not None:
            kp = torch.cat([fixed_kp.to(kp), kp[f:]], dim=0)
        if f and jk is not None:
            jk = jk.clone()
            jk[:f] = 0
            if vjac is not None:
                vjac = vjac.clone()
                vjac[:f] = 0
        return Evaluation(x=x, betas=betas, kp=kp, kp_jac=jk, verts=verts, verts_jac=vjac, pose=p.hand_pose)

    def _vertices(self, p: HandParams, data: WindowData) -> torch.Tensor:
        """(T, M, 3) the sampled vertices (numba kernel)."""
        return torch.from_numpy(vertices_fast(self.model, p, data.vertex_ids.numpy())).to(self.model.dtype)

    def _vertex_jacobian(self, p: HandParams, verts: torch.Tensor, data: WindowData) -> torch.Tensor:
        """(T, M, 3, L) Jacobian of the sampled vertices, computed only for the active ones.

        Active: the vertices of lifted contacts and those within ``ACTIVE_MARGIN`` of the
        object's surface (or inside it) in some slot; the others have no residual in the
        contact and penetration terms, so their rows stay zero.
        """
        from inscene.models.hands.jacobian import vertices_and_jacobian_fast

        T, M = verts.shape[:2]
        active = torch.zeros(M, dtype=torch.bool)
        if data.contact_vertex is not None and len(data.contact_vertex):
            active[data.contact_vertex] = True
        if data.sdf is not None and data.T_cam_obj is not None:
            Tco = data.T_cam_obj.to(torch.float64)
            ok = torch.isfinite(Tco).flatten(1).all(1)
            if ok.any():
                R, o = Tco[ok, :3, :3], Tco[ok, :3, 3]
                local = torch.einsum("gyx,gmy->gmx", R, verts[ok].to(torch.float64) - o[:, None])
                d, _ = data.sdf.lookup(local.reshape(-1, 3).numpy(), gradient=False)
                active |= torch.from_numpy((np.asarray(d).reshape(-1, M) < ACTIVE_MARGIN).any(0))
        jac = verts.new_zeros(T, M, 3, self.n + self.S)
        if active.any():
            ids = data.vertex_ids[active]
            _, j = vertices_and_jacobian_fast(self.model, p, ids)
            jac[:, active] = j[..., self._perm]
        return jac

    # ---------------------------------------------------------------- solving
    def blocks(self, ev: Evaluation, data: WindowData, jacobian: bool) -> list[tuple[str, Block]]:
        out = []
        for t in self.terms:
            b = t.block(ev, data, jacobian)
            if b is not None and b.res.numel():
                out.append((t.name, b))
        return out

    def assemble_banded(self, blocks: list[tuple[str, Block]], T: int) -> BandedSystem:
        """Normal equations of the blocks in block-banded storage (float64).

        Each block's ``J^T J`` is one batched product over its residual groups; its
        (slot a, slot b >= a) pieces are summed into the band, the shape columns into
        the border and the corner.
        """
        n, S = self.n, self.S
        L = n + S
        W = BANDWIDTH + 1
        corner = torch.zeros(S, S, dtype=torch.float64)
        band_pos, band_val, slot_pos, border_val, g_val = [], [], [], [], []
        for name, b in blocks:
            B, k, R, _ = b.jac.shape
            # products in the model's dtype (float32 by default: sums of at most a few hundred
            # terms), accumulated in float64
            J = b.jac.permute(0, 2, 1, 3).reshape(B, R, k * L)
            Jt = J.transpose(1, 2)
            jtj = torch.bmm(Jt, J).reshape(B, k, L, k, L)
            g_val.append(torch.bmm(Jt, b.res.to(J.dtype)[:, :, None]).reshape(B * k, L))
            corner += jtj[:, :, n:, :, n:].sum((0, 1, 3)).to(torch.float64)
            slot_pos.append(b.slots.reshape(-1))
            border_val.append(jtj[:, :, :n, :, n:].sum(3).reshape(-1, n, S))
            ai, bi = _UPPER[k]
            off = b.slots[:, bi] - b.slots[:, ai]  # (B, P)
            if int(off.min()) < 0 or int(off.max()) > BANDWIDTH:
                raise ValueError(f"cost term '{name}': residual groups must list nearby slots in increasing order")
            band_pos.append((b.slots[:, ai] * W + off).T.reshape(-1))  # (P B,)
            band_val.append(jtj[:, ai, :n, bi, :n].reshape(-1, n, n))
        # one scatter per destination (a scatter costs about the same whatever its size)
        band = torch.zeros(T * W, n, n, dtype=torch.float64)
        band.index_add_(0, torch.cat(band_pos), torch.cat(band_val).to(torch.float64))
        pos = torch.cat(slot_pos)
        border = torch.zeros(T, n, S, dtype=torch.float64)
        border.index_add_(0, pos, torch.cat(border_val).to(torch.float64))
        g = torch.zeros(T, L, dtype=torch.float64)
        g.index_add_(0, pos, torch.cat(g_val).to(torch.float64))
        return BandedSystem(band.reshape(T, W, n, n), border, corner, g[:, :n], g[:, n:].sum(0))

    def assemble(self, blocks: list[tuple[str, Block]], T: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Dense normal equations ``H`` (T n + S, T n + S) and gradient ``g`` (shape last), for checks."""
        return self.assemble_banded(blocks, T).to_dense()

    def solve(self, x: torch.Tensor, betas: torch.Tensor, data: WindowData, iterations: int,
              fixed_kp: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, SolveInfo]:
        """Levenberg-Marquardt from ``x`` (T, n), ``betas`` (S,); the first ``data.fixed`` slots stay put."""
        T = x.shape[0]
        f = data.fixed
        x = x.to(self.model.dtype).clone()
        betas = betas.to(self.model.dtype).clone()
        lam = self.damping
        ev = self.evaluate(x, betas, data, True, fixed_kp)
        for t in self.terms:
            t.prepare(ev, data)
        blocks = self.blocks(ev, data, True)
        cost0 = cost = float(sum(b.cost for _, b in blocks))
        accepted = 0
        for it in range(iterations):
            if blocks[0][1].jac is None:  # the last accepted step was evaluated without Jacobians
                ev = self.evaluate(x, betas, data, True, fixed_kp)
                blocks = self.blocks(ev, data, True)
            step = self.assemble_banded(blocks, T).solve(f, lam)
            if step is None:
                lam *= 10.0
                continue
            x_new = x + step[0].to(x)
            b_new = betas + step[1].to(betas)
            # the trial point is evaluated with Jacobians unless it is the last iteration: an
            # accepted step (the common case) then needs no second evaluation; the robust
            # weights stay those of the window's start
            last = it == iterations - 1
            cand = self.evaluate(x_new, b_new, data, not last, fixed_kp)
            cand_blocks = self.blocks(cand, data, not last)
            cost_new = float(sum(b.cost for _, b in cand_blocks))
            if cost_new < cost:
                x, betas, accepted = x_new, b_new, accepted + 1
                lam = max(lam * 0.3, 1e-7)
                blocks, cost = cand_blocks, cost_new
            else:
                lam = min(lam * 5.0, 1e7)
        terms = {name: float(b.cost) for name, b in blocks}
        return x, betas, SolveInfo(iterations, accepted, cost0, cost, terms)


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()
