"""Penetration: hand vertices inside the object are pushed out along the object's SDF gradient."""

from __future__ import annotations

import numpy as np
import torch

from .base import Block, CostTerm, Evaluation, WindowData


class Penetration(CostTerm):
    """``max(0, -sdf(v)) / sigma_penetration`` for the sampled hand vertices of every slot with an object pose.

    The SDF is the object's grid (object frame); a vertex ``v`` (camera frame) is
    looked up at ``R^T (v - o)``, and its gradient rotated back gives the Jacobian.
    The term does not move the hand's shape: with a noisy object pose, growing or
    shrinking the hand (and sliding it along the viewing rays) is the cheapest way
    out of the object, and the shape would follow the tracker's noise.
    """

    name = "penetration"
    needs_vertices = True

    def __init__(self, weight: float = 1.0, sigma: float = 0.002) -> None:
        super().__init__(weight)
        self.sigma = sigma

    def block(self, ev: Evaluation, data: WindowData, jacobian: bool = True) -> Block | None:
        if data.sdf is None or data.T_cam_obj is None:
            return None
        slots = torch.arange(data.fixed, ev.x.shape[0])
        T = data.T_cam_obj[slots].to(torch.float64)
        ok = torch.isfinite(T).flatten(1).all(1)
        slots, T = slots[ok], T[ok]
        if len(slots) == 0:
            return None
        R, o = T[:, :3, :3], T[:, :3, 3]
        v = ev.verts[slots].to(torch.float64)  # (G, M, 3)
        local = torch.einsum("gyx,gmy->gmx", R, v - o[:, None])
        G, M = v.shape[:2]
        d, grad = data.sdf.lookup(local.reshape(-1, 3).numpy(), gradient=jacobian)
        d = torch.from_numpy(np.asarray(d)).reshape(G, M)
        s = self.weight ** 0.5 / self.sigma
        inside = d < 0
        # only the vertices inside count: gather them per slot (zero-padded), so the normal
        # equations multiply a few rows per slot, not all the sampled vertices
        width = max(int(inside.sum(1).max()), 1)
        order = torch.argsort((~inside).to(torch.int8), dim=1, stable=True)[:, :width]  # inside ones first
        keep = torch.gather(inside, 1, order)
        depth = torch.gather(d, 1, order)
        res = torch.where(keep, -depth, torch.zeros_like(depth)) * s
        jac = None
        if jacobian:
            g_obj = torch.from_numpy(np.asarray(grad)).reshape(G, M, 3)
            g_cam = torch.einsum("gxy,gmy->gmx", R, torch.gather(g_obj, 1, order[..., None].expand(-1, -1, 3)))
            dr = torch.where(keep[..., None], -g_cam, torch.zeros_like(g_cam)) * s  # (G, width, 3)
            vj = ev.verts_jac[slots]  # (G, M, 3, L)
            vj = torch.gather(vj, 1, order[:, :, None, None].expand(-1, -1, 3, vj.shape[-1]))
            jac = torch.einsum("gmx,gmxl->gml", dr.to(vj), vj)[:, None]
            jac[..., ev.x.shape[1]:] = 0  # the shape is not the way out of the object (see the class note)
        return Block(res.to(ev.verts), slots[:, None], jac)
