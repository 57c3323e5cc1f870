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

from inscene.models.hands.jacobian import keypoints_and_jacobian
from inscene.models.hands.params import HandParams

from ..costs.base import Block, CostTerm, Evaluation, WindowData


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
            kp, jk = keypoints_and_jacobian(model, p)
            jk = jk[..., self._perm]
            if self.needs_vertices:
                from inscene.models.hands.jacobian import vertices_and_jacobian

                verts, vjac = vertices_and_jacobian(model, p, data.vertex_ids)
                vjac = vjac[..., self._perm]
        else:
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

    # ---------------------------------------------------------------- solving
    def blocks(self, ev: Evaluation, data: WindowData, jacobian: bool) -> list[tuple[str, Block]]:
        out = []
        for t in self.terms:
            b = t.block(ev, data, jacobian)
            if b is not None and b.res.numel():
                out.append((t.name, b))
        return out

    def assemble(self, blocks: list[tuple[str, Block]], T: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Normal equations ``H`` (T n + S, T n + S) and gradient ``g`` (float64) from the blocks.

        Each block's ``J^T J`` is one batched product over its residual groups; the
        (slot, slot) pieces are summed into a (T, T, L, L) block matrix whose shape
        columns are then folded into the shared ``betas`` block.
        """
        n, S = self.n, self.S
        L = n + S
        Hb = torch.zeros(T * T, L, L, dtype=torch.float64)
        gb = torch.zeros(T, L, dtype=torch.float64)
        for _, b in blocks:
            B, k, R, _ = b.jac.shape
            J = b.jac.to(torch.float64).permute(0, 2, 1, 3).reshape(B, R, k * L)
            r = b.res.to(torch.float64)
            jtj = torch.bmm(J.transpose(1, 2), J).reshape(B, k, L, k, L).permute(0, 1, 3, 2, 4)  # (B, k, k, L, L)
            jtr = torch.bmm(J.transpose(1, 2), r[:, :, None]).reshape(B, k, L)
            pair = (b.slots[:, :, None] * T + b.slots[:, None, :]).reshape(-1)
            Hb.index_add_(0, pair, jtj.reshape(-1, L, L))
            gb.index_add_(0, b.slots.reshape(-1), jtr.reshape(-1, L))
        Hb = Hb.reshape(T, T, L, L)
        N = T * n + S
        H = torch.empty(N, N, dtype=torch.float64)
        H[:T * n, :T * n] = Hb[:, :, :n, :n].permute(0, 2, 1, 3).reshape(T * n, T * n)
        xb = Hb[:, :, :n, n:].sum(1).reshape(T * n, S)
        H[:T * n, T * n:] = xb
        H[T * n:, :T * n] = xb.T
        H[T * n:, T * n:] = Hb[:, :, n:, n:].sum((0, 1))
        g = torch.cat([gb[:, :n].reshape(-1), gb[:, n:].sum(0)])
        return H, g

    def solve(self, x: torch.Tensor, betas: torch.Tensor, data: WindowData, iterations: int,
              fixed_kp: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, SolveInfo]:
        """Levenberg-Marquardt from ``x`` (T, n), ``betas`` (S,); the first ``data.fixed`` slots stay put."""
        T, n, S = x.shape[0], self.n, self.S
        f = data.fixed
        free = torch.cat([torch.arange(f * n, T * n), T * n + torch.arange(S)])
        x = x.to(self.model.dtype).clone()
        betas = betas.to(self.model.dtype).clone()
        lam = self.damping
        ev = self.evaluate(x, betas, data, True, fixed_kp)
        for t in self.terms:
            t.prepare(ev, data)
        blocks = self.blocks(ev, data, True)
        cost0 = cost = float(sum(b.cost for _, b in blocks))
        accepted = 0
        for _ in range(iterations):
            H, g = self.assemble(blocks, T)
            H, g = H[free][:, free], g[free]
            diag = torch.diagonal(H)
            A = H + torch.diag(lam * diag + 1e-6)
            L, info = torch.linalg.cholesky_ex(A)
            if int(info) != 0:
                lam *= 10.0
                continue
            step = torch.cholesky_solve(-g[:, None], L)[:, 0]
            full = torch.zeros(T * n + S, dtype=torch.float64)
            full[free] = step
            x_new = x + full[:T * n].reshape(T, n).to(x)
            b_new = betas + full[T * n:].to(betas)
            cand = self.evaluate(x_new, b_new, data, False, fixed_kp)
            cost_new = float(sum(b.cost for _, b in self.blocks(cand, data, False)))
            if cost_new < cost:
                x, betas, accepted = x_new, b_new, accepted + 1
                lam = max(lam * 0.3, 1e-7)
                ev = self.evaluate(x, betas, data, True, fixed_kp)
                for t in self.terms:
                    t.prepare(ev, data)
                blocks = self.blocks(ev, data, True)
                cost = float(sum(b.cost for _, b in blocks))
            else:
                lam = min(lam * 5.0, 1e7)
        terms = {name: float(b.cost) for name, b in blocks}
        return x, betas, SolveInfo(iterations, accepted, cost0, cost, terms)


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()
