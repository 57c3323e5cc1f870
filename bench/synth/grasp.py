"""Grasp synthesis by optimization: finger pads on the object's surface, the hand outside it.

A grasp is asked for as a :class:`GraspTarget` in the object's frame: the
direction the palm faces (``approach``), the hand's radial axis (thumb side),
a centre inside the object on the grip line, the fingers that must touch, and
half-spaces the hand must stay in (the table; the other hand's zone). The hand
starts with its palm facing the object a little off its surface, and Adam moves
its rigid pose and joint rotations in two stages:

1. pads to points: each touching finger's pad anchor is pulled to a point on the
   surface found by a ray along the grip line (fingers on the distal side, the
   thumb opposite), while every hand vertex is kept outside the object (SDF
   grid, margin), inside the half-spaces, within the joint limits and near the
   pose prior;
2. pads to the surface: the pads are pulled onto the surface itself (signed
   distance = margin) with their normals against the surface normal; the point
   targets only guide weakly;
3. refinement: while exact distances find a vertex more than ``REFINE_TOL`` inside,
   the grid distances are corrected by the exact-minus-grid bias at each vertex and
   stage 2 runs a few more steps; what remains is removed by a small rigid shift
   along the surface normal.

The result is checked with exact distances (``geometry.ObjectGeometry``): the
fingers whose pad lies within ``CONTACT_TOL`` of the surface are the grasp's
contacts, penetration is the deepest hand vertex inside the object. Losses are in
millimetres and degrees so that the weights read as "how many mm is one degree".
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from inscene.models.hands.rotations import axis_angle_to_matrix

from .geometry import ObjectGeometry
from .handkit import HandKit

CONTACT_TOL = 0.002
"""A pad touches when its nearest vertex is within this distance of the surface, metres."""
OK_PENETRATION = 5e-4
"""A grasp is accepted when no vertex lies deeper inside the object (else the next candidate is tried), metres."""
MARGIN = 0.0006
"""Distance the optimization keeps every vertex outside the surface (and the pads at), metres."""
REFINE_ROUNDS, REFINE_ITERATIONS, REFINE_TOL = 5, 50, 2e-4
"""Refinement with exact distances: at most this many rounds of this many steps, until penetration <= tol (m)."""
FINGER_OFFSETS = {"thumb": 0.016, "index": 0.011, "middle": -0.007, "ring": -0.025, "little": -0.041}
"""Where each finger's target lies along the radial axis from the grasp centre, metres."""


@dataclass(frozen=True)
class GraspTarget:
    """What grasp to synthesize, in the object's frame."""

    approach: np.ndarray
    """(3,) unit direction the palm faces (from the hand into the object)."""
    radial: np.ndarray
    """(3,) the hand's radial axis (little finger to index, thumb side), orthogonal to ``approach``."""
    centre: np.ndarray
    """(3,) a point inside the object on the grip line."""
    fingers: tuple[str, ...] = ("thumb", "index", "middle")
    """Fingers whose pads must touch."""
    keep_out: tuple[tuple[tuple[float, float, float], float], ...] = ()
    """Half-spaces ``n . x >= d`` every hand vertex must stay in: ``((n, d), ...)``."""
    gap: float = 0.018
    """Initial distance of the palm's surface from the object along ``approach``, metres."""


@dataclass(frozen=True)
class Grasp:
    """A synthesized grasp: the hand's parameters in the object's frame and how well it touches."""

    side: str
    global_orient: np.ndarray
    """(3,) axis-angle, object frame."""
    hand_pose: np.ndarray
    """(P, 3) joint rotations (the model's own)."""
    betas: np.ndarray
    """(S,) shape."""
    transl: np.ndarray
    """(3,) translation, object frame."""
    T_obj_hand: np.ndarray
    """(4, 4) the hand's rest frame in the object's frame."""
    target: GraspTarget
    contact_fingers: tuple[str, ...]
    """Fingers whose pad is within ``CONTACT_TOL`` of the surface."""
    pad_distance: dict[str, float]
    """finger -> exact distance of its pad (nearest pad vertex) to the surface, metres (0 if touching inside)."""
    penetration: float
    """Depth of the deepest hand vertex inside the object, metres (0 if none)."""
    clearance: float
    """Smallest distance of a hand vertex inside the keep-out half-spaces' boundaries, metres (inf if none)."""
    loss: float
    seconds: float

    @property
    def ok(self) -> bool:
        """Thumb and at least one finger touch, penetration at most ``OK_PENETRATION``, half-spaces respected."""
        return ("thumb" in self.contact_fingers and len(self.contact_fingers) >= 2
                and self.penetration <= OK_PENETRATION and self.clearance >= -1e-4)


def _targets(geom: ObjectGeometry, t: GraspTarget, distal: np.ndarray, radial: np.ndarray) -> dict[str, np.ndarray]:
    """finger -> surface point its pad aims at (fingers whose ray misses the object are left out)."""
    out = {}
    for f in t.fingers:
        side = -1.0 if f == "thumb" else 1.0
        origin = t.centre + side * 0.3 * distal + FINGER_OFFSETS[f] * radial
        hit = geom.first_hit(origin, -side * distal)
        if hit is not None:
            out[f] = hit
    return out


def synthesize_grasp(kit: HandKit, geom: ObjectGeometry, target: GraspTarget,
                     iterations: tuple[int, int] = (160, 220)) -> Grasp:
    """Optimize a grasp of ``target`` for the hand ``kit`` on the object ``geom`` (see the module docstring)."""
    t0 = time.perf_counter()
    model = kit.model
    dt = model.dtype
    sign = 1.0 if model.side == "right" else -1.0
    a = target.approach / np.linalg.norm(target.approach)
    r = target.radial - target.radial.dot(a) * a
    r /= np.linalg.norm(r)
    d = sign * np.cross(a, r)
    R0 = kit.rotation_for(d, r)
    surface = geom.first_hit(target.centre - 0.5 * a, a)
    front = surface if surface is not None else target.centre
    palm_goal = front - target.gap * a
    t_init = palm_goal - (R0 @ (kit.palm_centre - kit.j0) + kit.j0)
    aims = _targets(geom, target, d, r)
    fingers = [f for f in target.fingers if f in aims]
    anchors = [kit.pad_anchor[f] for f in fingers]
    aim = torch.as_tensor(np.stack([aims[f] for f in fingers]) if fingers else np.zeros((0, 3)), dtype=dt)
    planes_n = torch.as_tensor(np.array([p[0] for p in target.keep_out]).reshape(-1, 3), dtype=dt)
    planes_d = torch.as_tensor(np.array([p[1] for p in target.keep_out]).reshape(-1), dtype=dt)

    faces = model.faces.numpy()
    ring_faces = [torch.as_tensor(faces[np.any(faces == v, axis=1)]) for v in anchors]
    omega = torch.zeros(3, dtype=dt, requires_grad=True)
    transl = torch.as_tensor(t_init, dtype=dt).clone().requires_grad_(True)
    pose = model.pose_prior.mean_pose().to(dt).clone()[None].requires_grad_(True)
    betas = torch.as_tensor(kit.betas, dtype=dt)[None]
    R0_t = torch.as_tensor(R0, dtype=dt)
    j0 = torch.as_tensor(kit.j0, dtype=dt)
    limits, prior = model.joint_limits, model.pose_prior
    zero3 = torch.zeros(1, 3, dtype=dt)
    mdl = model

    def posed() -> tuple[torch.Tensor, torch.Tensor]:
        local = mdl(zero3, pose, betas, zero3).vertices[0]
        R = axis_angle_to_matrix(omega) @ R0_t
        return (local - j0) @ R.T + j0 + transl, R

    from inscene.kernels import sdf_torch

    bias = torch.zeros(model.num_vertices, dtype=dt)  # exact minus grid distance, mm (refinement rounds)

    def loss_fn(stage: int) -> torch.Tensor:
        verts, _ = posed()
        sd = sdf_torch(geom.grid, verts) * 1e3 + bias  # mm
        w_pen = {1: 5.0, 2: 50.0, 3: 300.0}[stage]
        loss = w_pen * torch.relu(MARGIN * 1e3 - sd).pow(2).sum()
        if len(planes_d):
            gap = (verts @ planes_n.T - planes_d) * 1e3
            loss = loss + w_pen * torch.relu(MARGIN * 1e3 - gap).pow(2).sum()
        loss = loss + limits.residual(pose).pow(2).sum() + 0.3 * prior.residual(pose).pow(2).sum()
        loss = loss + 100.0 * omega.pow(2).sum()
        if fingers:
            pads = verts[anchors]
            w_aim = 1.0 if stage == 1 else 0.05
            loss = loss + w_aim * ((pads - aim) * 1e3).pow(2).sum()
            if stage >= 2:
                loss = loss + 5.0 * (sd[anchors] - MARGIN * 1e3).pow(2).sum()
                normals = _anchor_normals(verts, ring_faces)
                grad = torch.as_tensor(geom.grid.lookup(pads.detach().numpy())[1], dtype=dt)
                grad = grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-9)
                loss = loss + (20.0 if stage == 2 else 5.0) * (1.0 + (normals * grad).sum(-1)).pow(2).sum()
        return loss

    opt = torch.optim.Adam([{"params": [omega], "lr": 0.01}, {"params": [transl], "lr": 0.001},
                            {"params": [pose], "lr": 0.02}])
    base_lr = [g["lr"] for g in opt.param_groups]
    total = sum(iterations)
    step = 0
    loss = torch.zeros(())
    for stage, n in ((1, iterations[0]), (2, iterations[1])):
        for _ in range(n):
            scale = 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * step / total))
            for g, lr in zip(opt.param_groups, base_lr):
                g["lr"] = lr * scale
            opt.zero_grad()
            loss = loss_fn(stage)
            loss.backward()
            opt.step()
            step += 1

    # refinement: correct the grid's interpolation error with exact distances where the hand dips in
    for _ in range(REFINE_ROUNDS):
        with torch.no_grad():
            verts, _ = posed()
        v = verts.numpy()
        exact = geom.signed_distance(v)
        if -exact.min() <= REFINE_TOL:
            break
        grid = geom.grid_distance(v)
        bias = torch.as_tensor((exact - grid) * 1e3, dtype=dt)
        for g, lr in zip(opt.param_groups, base_lr):
            g["lr"] = 0.05 * lr  # steps of ~0.05 mm: enough to move out, small enough to keep the pads
        for _ in range(REFINE_ITERATIONS):
            opt.zero_grad()
            loss = loss_fn(3)
            loss.backward()
            opt.step()

    with torch.no_grad():
        verts, R = posed()
        _push_out(geom, verts, transl)
        verts, R = posed()
    return _finish(kit, geom, target, R.numpy(), transl.detach().numpy(), pose.detach()[0].numpy(),
                   verts.numpy(), float(loss.detach()), time.perf_counter() - t0)


def _push_out(geom: ObjectGeometry, verts: torch.Tensor, transl: torch.Tensor, rounds: int = 6) -> None:
    """Last resort: translate the hand (in place) along the surface normal at its deepest vertices until
    exact distances find no vertex more than ``REFINE_TOL`` inside (the pads may leave the surface a little)."""
    v = verts.detach().numpy().copy()
    shift = np.zeros(3)
    best = (np.inf, shift)
    for _ in range(rounds):
        sd = geom.signed_distance(v + shift)
        depth = -sd.min()
        best = min(best, (depth, shift.copy()), key=lambda b: b[0])
        if depth <= REFINE_TOL:
            break
        deep = np.flatnonzero(sd < -0.5 * REFINE_TOL)
        n = geom.grid.lookup(v[deep] + shift)[1].sum(0)
        shift = shift + (depth + 0.5 * REFINE_TOL) * n / max(np.linalg.norm(n), 1e-12)
    transl += torch.as_tensor(best[1], dtype=transl.dtype)  # a hand wedged across a thin wall keeps its place


def _anchor_normals(verts: torch.Tensor, ring_faces: list[torch.Tensor]) -> torch.Tensor:
    """(A, 3) unit area-weighted normals of A vertices from their incident faces (each (k, 3)); verts (V, 3)."""
    out = []
    for f in ring_faces:
        a, b, c = verts[f[:, 0]], verts[f[:, 1]], verts[f[:, 2]]
        n = torch.linalg.cross(b - a, c - a).sum(0)
        out.append(n / n.norm().clamp_min(1e-12))
    return torch.stack(out) if out else verts.new_zeros(0, 3)


def _finish(kit: HandKit, geom: ObjectGeometry, target: GraspTarget, R: np.ndarray, t: np.ndarray,
            pose: np.ndarray, verts: np.ndarray, loss: float, seconds: float) -> Grasp:
    """Parameters, pose and exact contact figures of an optimized hand (vertices (V, 3), object frame)."""
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = t + kit.j0 - R @ kit.j0
    go, transl = kit.from_T(T)
    sd = geom.signed_distance(verts)
    pad = {f: float(max(sd[kit.pad_vertices[f]].min(), 0.0)) for f in ("thumb", "index", "middle", "ring", "little")}
    contacts = tuple(f for f in pad if pad[f] <= CONTACT_TOL)
    clearance = np.inf
    for n, dd in target.keep_out:
        clearance = min(clearance, float((verts @ np.asarray(n) - dd).min()))
    return Grasp(kit.model.side, go, pose.copy(), kit.betas.copy(), transl, T, target, contacts, pad,
                 float(max(-sd.min(), 0.0)), clearance, loss, seconds)


def best_grasp(kit: HandKit, geom: ObjectGeometry, targets: list[GraspTarget]) -> Grasp:
    """The first good grasp of ``targets`` (tried in order), else the one with the most contacts and least penetration."""
    tried = []
    for t in targets:
        g = synthesize_grasp(kit, geom, t)
        if g.ok:
            return g
        tried.append(g)
    usable = [g for g in tried if "thumb" in g.contact_fingers and len(g.contact_fingers) >= 2] or tried
    return min(usable, key=lambda g: (g.penetration > 1e-3, g.penetration, -len(g.contact_fingers)))
