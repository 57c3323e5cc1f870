"""The window objective's residual terms and normal equations against naive twins (float64, anny's right hand).

One small random window: T = 5 consecutive slots, the first held fixed (its
keypoints given, as the solver passes the last decided rows), poses near the pose
prior's mean, random 2D / relative-3D observations, a box object placed on every
slot's hand (so some sampled vertices are inside it), contact targets a few
millimetres off the hand and contact flags that pair some slots for rigidity.

* every term's analytic Jacobian (:class:`~inscene.engine.costs.base.Block`,
  scattered into the dense window Jacobian) equals autograd of its residuals,
  to 1e-8 relative (float64). The robust weights (2D reprojection, contacts) and
  the landmark scales are held at the base point, as within one LM iteration.
  The penetration term looks the SDF up in numpy (numba), so its twin is the same
  formula over a naive torch trilinear lookup of the grid (autograd through the
  interpolant); by design it has no ``betas`` columns.
* ``WindowProblem.assemble`` equals ``J^T J`` and ``J^T r`` of the dense Jacobian
  built by loops from the blocks, and ``g`` equals half the autograd gradient of the
  total cost (``betas``: without the penetration term's share, see above).
* the Levenberg-Marquardt solve lowers the cost and leaves the fixed slot alone.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import torch_single_thread
import trimesh
from inscene.engine.config import WindowConfig
from inscene.engine.costs.base import Block, WindowData
from inscene.engine.costs.penetration import Penetration
from inscene.engine.costs.smoothness import Z_REF
from inscene.engine.window.objective import build_terms
from inscene.engine.window.problem import WindowProblem
from inscene.kernels import sdf_grid

T_SLOTS, FIXED = 5, 1
RTOL = 1e-8
"""Relative tolerance of analytic against autograd Jacobians (Frobenius norm), float64."""
K = np.array([[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]])


one_torch_thread = pytest.fixture(scope="module", autouse=True)(torch_single_thread)


def _rotation(rng: np.random.Generator) -> np.ndarray:
    return trimesh.transformations.random_rotation_matrix(rng.random(3))[:3, :3]


@pytest.fixture(scope="module")
def grid():
    """A 6 x 4 x 9 cm box's SDF grid (object frame)."""
    return sdf_grid(trimesh.creation.box(extents=(0.06, 0.04, 0.09)), resolution=48, cache=False)


@pytest.fixture(scope="module")
def window(anny_right, grid):
    """(problem, x (T, n), betas (S,), data, fixed_kp (F, 21, 3)) of a random window with every term active."""
    model = anny_right
    rng = np.random.default_rng(7)
    P, S = model.num_pose_joints, model.num_betas
    prior = model.pose_prior
    terms = build_terms(model, WindowConfig(), with_object=True)
    problem = WindowProblem(model, terms)
    n = problem.n
    # poses near the prior mean (some joints beyond their limits), hands ~0.45 m in front of the camera
    anat = prior.mean + prior.std * torch.as_tensor(rng.normal(0, 0.7, (T_SLOTS, P, 3)))
    pose = prior.from_anatomical(anat)
    x = torch.zeros(T_SLOTS, n, dtype=torch.float64)
    go = rng.normal(0, 0.3, 3) + np.array([0.0, np.pi, 0.0])
    for t in range(T_SLOTS):
        x[t, :3] = torch.as_tensor(go + rng.normal(0, 0.05, 3))
        x[t, -3:] = torch.as_tensor([0.02 * t, -0.01 * t, 0.45 + 0.01 * t]) + torch.as_tensor(rng.normal(0, 0.01, 3))
    x[:, 3:3 + 3 * P] = pose.reshape(T_SLOTS, -1)
    betas = torch.as_tensor(rng.normal(0, 0.5, S)) * model.beta_std
    with torch.no_grad():
        out = model.pose(problem.params(x, betas))
    kp, verts = out.keypoints, out.vertices
    vertex_ids = torch.as_tensor(np.sort(rng.choice(model.num_vertices, 150, replace=False)))
    # the box centred on each slot's sampled vertices: some inside (penetration), some outside
    T_cam_obj = np.tile(np.eye(4), (T_SLOTS, 1, 1))
    for t in range(T_SLOTS):
        T_cam_obj[t, :3, :3] = _rotation(rng)
        T_cam_obj[t, :3, 3] = verts[t, vertex_ids].mean(0).numpy() + rng.normal(0, 0.005, 3)
    T_cam_obj[2, :, :] = np.nan  # a slot without an object pose
    uv = kp @ torch.as_tensor(K).T
    uv = uv[..., :2] / uv[..., 2:] + torch.as_tensor(rng.normal(0, 4.0, (T_SLOTS, 21, 2)))
    conf = torch.as_tensor(rng.uniform(0.2, 1.0, (T_SLOTS, 21)))
    conf[FIXED + 1, 3] = 0.0  # a missing keypoint
    rel = kp - kp.mean(1, keepdim=True)
    landmarks = rel * 1.1 + torch.as_tensor(rng.normal(0, 0.004, (T_SLOTS, 21, 3)))
    # contacts on the free slots: candidate vertices pulled to targets a few mm away
    c_slot, c_vert = [], []
    for t in range(FIXED, T_SLOTS):
        pos = rng.choice(len(vertex_ids), 6, replace=False)
        c_slot += [t] * len(pos)
        c_vert += list(pos)
    c_slot, c_vert = torch.as_tensor(c_slot), torch.as_tensor(c_vert)
    target = verts[c_slot, vertex_ids[c_vert]] + torch.as_tensor(rng.normal(0, 0.004, (len(c_slot), 3)))
    data = WindowData(rows=np.arange(20, 20 + T_SLOTS), fixed=FIXED, uv=uv, conf=conf, landmarks=landmarks,
                      lm_weight=conf.sqrt(), K=torch.as_tensor(K), vertex_ids=vertex_ids,
                      T_cam_obj=torch.as_tensor(T_cam_obj), in_contact=torch.tensor([True, True, True, False, True]),
                      contact_slot=c_slot, contact_vertex=c_vert, contact_target=target, sdf=grid,
                      betas_prior=betas + 0.1 * model.beta_std)
    data.extras["landmark_scale"] = torch.as_tensor(rng.uniform(0.85, 0.95, T_SLOTS))
    fixed_kp = kp[:FIXED].clone()
    # the estimate moves off the point the observations were made at
    x = x + torch.as_tensor(rng.normal(0, 0.02, x.shape))
    betas = betas + 0.2 * model.beta_std * torch.as_tensor(rng.normal(0, 1, S))
    ev = problem.evaluate(x, betas, data, True, fixed_kp)
    for term in problem.terms:
        term.prepare(ev, data)  # robust weights at the base point, held fixed below
    return problem, x, betas, data, fixed_kp


def dense_jacobian(block: Block, T: int, n: int, S: int) -> torch.Tensor:
    """Naive twin of the block scatter: (B R, T n + S), row ``b R + r``, slot columns then the shared betas."""
    B, k, R, _ = block.jac.shape
    J = torch.zeros(B * R, T * n + S, dtype=torch.float64)
    for b in range(B):
        for i in range(k):
            s = int(block.slots[b, i])
            J[b * R:(b + 1) * R, s * n:(s + 1) * n] += block.jac[b, i, :, :n]
            J[b * R:(b + 1) * R, T * n:] += block.jac[b, i, :, n:]
    return J


def trilinear_sdf(grid, p: torch.Tensor) -> torch.Tensor:
    """Naive torch twin of the SDF grid lookup at (..., 3) points: trilinear inside the grid, plus the distance
    to the grid's box outside it (differentiable with autograd)."""
    values = torch.as_tensor(grid.values, dtype=torch.float64)
    top = torch.tensor(values.shape, dtype=torch.float64) - 1
    q = (p - torch.as_tensor(grid.origin)) / grid.spacing
    c = torch.minimum(torch.maximum(q, torch.zeros(3, dtype=torch.float64)), top)
    i = torch.minimum(c.detach().floor(), top - 1).long()
    f = c - i
    d = 0.0
    for corner in range(8):
        o = [(corner >> a) & 1 for a in range(3)]
        w = 1.0
        for a in range(3):
            w = w * (f[..., a] if o[a] else 1 - f[..., a])
        d = d + w * values[i[..., 0] + o[0], i[..., 1] + o[1], i[..., 2] + o[2]]
    e2 = ((q - c) ** 2).sum(-1)
    return d + torch.where(e2 > 0, e2.clamp_min(1e-300).sqrt(), torch.zeros_like(e2)) * grid.spacing


def penetration_twin(term: Penetration, x, betas, problem: WindowProblem, data: WindowData, fixed_kp):
    """``max(0, -sdf(R^T (v - o))) / sigma`` of the free slots with an object pose (:func:`trilinear_sdf`)."""
    ev = problem.evaluate(x, betas, data, False, fixed_kp)
    slots = [t for t in range(data.fixed, x.shape[0]) if torch.isfinite(data.T_cam_obj[t]).all()]
    Tco = data.T_cam_obj[slots]
    R, o = Tco[:, :3, :3], Tco[:, :3, 3]
    local = torch.einsum("gyx,gmy->gmx", R, ev.verts[slots] - o[:, None])
    d = trilinear_sdf(data.sdf, local)
    r = torch.relu(-d) * (term.weight ** 0.5 / term.sigma)
    # the term keeps, per slot, the vertices inside the object (in index order, zero-padded)
    with torch.no_grad():
        inside = d < 0
        width = max(int(inside.sum(1).max()), 1)
        order = torch.argsort((~inside).to(torch.int8), dim=1, stable=True)[:, :width]
        keep = torch.gather(inside, 1, order)
    return torch.where(keep, torch.gather(r, 1, order), torch.zeros_like(torch.gather(r, 1, order)))


def residual_fn(problem: WindowProblem, name: str, data: WindowData, fixed_kp):
    """(x, betas) -> the term's residuals, flattened (the twin for the penetration term)."""
    term = next(t for t in problem.terms if t.name == name)

    def f(x, betas):
        if isinstance(term, Penetration):
            return penetration_twin(term, x, betas, problem, data, fixed_kp).reshape(-1)
        ev = problem.evaluate(x, betas, data, False, fixed_kp)
        return term.block(ev, data, False).res.reshape(-1)

    return f


def autograd_jacobian(f, x, betas) -> torch.Tensor:
    jx, jb = torch.autograd.functional.jacobian(f, (x, betas), vectorize=True)
    return torch.cat([jx.reshape(jx.shape[0], -1), jb], dim=1)


def test_every_term_is_active(window):
    problem, x, betas, data, fixed_kp = window
    ev = problem.evaluate(x, betas, data, True, fixed_kp)
    names = [name for name, _ in problem.blocks(ev, data, True)]
    assert names == ["reprojection", "landmarks", "pose_prior", "shape", "acceleration", "velocity", "contact",
                     "penetration", "rigidity"]
    blocks = dict(problem.blocks(ev, data, True))
    assert (blocks["penetration"].res > 0).sum() >= 10 and (blocks["penetration"].res == 0).sum() >= 10
    assert blocks["pose_prior"].res[:, -problem.P * 3:].abs().max() > 0  # some joint beyond its limits
    # rigidity pairs: (20, 21) and (21, 22) are in contact, but slot 2 has no object pose; 23 is not in contact
    assert blocks["rigidity"].slots.tolist() == [[0, 1]]


@pytest.mark.parametrize("name", ["reprojection", "landmarks", "pose_prior", "shape", "acceleration", "velocity",
                                  "contact", "penetration", "rigidity"])
def test_term_jacobian_equals_autograd(window, name):
    problem, x, betas, data, fixed_kp = window
    T, n, S = x.shape[0], problem.n, problem.S
    ev = problem.evaluate(x, betas, data, True, fixed_kp)
    block = dict(problem.blocks(ev, data, True))[name]
    f = residual_fn(problem, name, data, fixed_kp)
    res = f(x, betas)
    J = dense_jacobian(block, T, n, S)
    J_auto = autograd_jacobian(f, x, betas)
    torch.testing.assert_close(block.res.reshape(-1), res, rtol=1e-10, atol=1e-12)
    if name == "penetration":
        assert J[:, T * n:].abs().max() == 0  # no shape columns, by design (Penetration's class note)
        J_auto[:, T * n:] = 0
    assert J_auto.norm() > 0
    err = (J - J_auto).norm() / J_auto.norm()
    assert err < RTOL, f"{name}: relative Jacobian error {err:.2e}"
    # fixed slots: only the pose prior sees their parameters (their keypoints are given)
    if name != "pose_prior":
        assert J[:, :FIXED * n].abs().max() == 0


def test_smoothness_is_depth_normalized(window):
    """Acceleration residuals equal ``(Z_REF / z) (k[t+1] - 2 k[t] + k[t-1]) / sigma``, z the last slot's mean depth;
    the derivative of z is part of the Jacobian (without it the check above would fail)."""
    problem, x, betas, data, fixed_kp = window
    term = next(t for t in problem.terms if t.name == "acceleration")
    ev = problem.evaluate(x, betas, data, True, fixed_kp)
    block = term.block(ev, data, True)
    kp = ev.kp
    for g, (a, b, c) in enumerate(block.slots.tolist()):
        z = kp[c, :, 2].mean()
        want = (Z_REF / z) * (kp[a] - 2 * kp[b] + kp[c]).reshape(-1) * term.weight ** 0.5 / term.sigma
        torch.testing.assert_close(block.res[g], want, rtol=1e-12, atol=0)
    # the depth term's share of the Jacobian is far above the tolerance
    J = dense_jacobian(block, x.shape[0], problem.n, problem.S)
    c = block.slots[:, -1]
    dz = ev.kp_jac[c, :, 2].mean(1)
    part = (block.res / ev.kp[c, :, 2].mean(-1)[:, None])[:, :, None] * dz[:, None, :]
    assert part.norm() > 1e3 * RTOL * J.norm()


@pytest.mark.parametrize("name", ["acceleration", "velocity"])
def test_smoothness_over_dropped_frames(window, name):
    """Slots 1, 2, 3 and 5 frame intervals apart (a live source dropped frames): the divided differences for unequal
    steps, their Jacobian exact, and a hand moving at constant speed costs nothing however its frames are spaced."""
    import dataclasses

    problem, x, betas, data, fixed_kp = window
    steps = np.array([1.0, 1.0, 2.0, 3.0, 5.0])
    uneven = dataclasses.replace(data, steps=steps)
    term = next(t for t in problem.terms if t.name == name)
    ev = problem.evaluate(x, betas, uneven, True, fixed_kp)
    block = term.block(ev, uneven, True)
    f = residual_fn(problem, name, uneven, fixed_kp)
    J = dense_jacobian(block, x.shape[0], problem.n, problem.S)
    err = (J - autograd_jacobian(f, x, betas)).norm() / J.norm()
    assert err < RTOL, f"{name}: relative Jacobian error {err:.2e}"
    # keypoints moving at constant velocity across the view (constant depth), sampled at the slots' times
    t = np.cumsum(steps) - steps[0]
    kp = ev.kp[1:2].repeat(len(steps), 1, 1) + torch.as_tensor(t)[:, None, None] * torch.tensor([0.004, -0.002, 0.0])
    steady = dataclasses.replace(ev, kp=kp.to(ev.kp))
    if name == "acceleration":
        assert term.block(steady, uneven, False).res.abs().max() < 1e-9
        # counted in rows, the same motion would look like a jerk at every gap
        assert term.block(steady, data, False).res.abs().max() > 0.05
    else:  # the velocity is the same per frame interval at every step
        v = term.block(steady, uneven, False).res.reshape(len(block.slots), 21, 3)
        torch.testing.assert_close(v, v[:1].expand_as(v), rtol=1e-9, atol=1e-12)


def test_assemble_equals_dense_normal_equations(window):
    """``H = J^T J`` and ``g = J^T r`` of the dense window Jacobian stacked from every block by loops."""
    problem, x, betas, data, fixed_kp = window
    T, n, S = x.shape[0], problem.n, problem.S
    ev = problem.evaluate(x, betas, data, True, fixed_kp)
    blocks = problem.blocks(ev, data, True)
    H, g = problem.assemble(blocks, T)
    J = torch.cat([dense_jacobian(b, T, n, S) for _, b in blocks])
    r = torch.cat([b.res.reshape(-1) for _, b in blocks])
    H_naive, g_naive = J.T @ J, J.T @ r
    assert H.shape == (T * n + S, T * n + S) and g.shape == (T * n + S,)
    torch.testing.assert_close(H, H_naive, rtol=1e-10, atol=1e-10 * H_naive.abs().max().item())
    torch.testing.assert_close(g, g_naive, rtol=1e-10, atol=1e-10 * g_naive.abs().max().item())
    torch.testing.assert_close(H, H.T, rtol=0, atol=1e-12 * H.abs().max().item())
    # the solver's free system: fixed slots' columns dropped; among them only the pose prior couples to anything
    prior = dict(blocks)["pose_prior"]
    Jp = dense_jacobian(prior, T, n, S)
    fixed_cols = slice(0, FIXED * n)
    torch.testing.assert_close(H[fixed_cols, fixed_cols], Jp[:, fixed_cols].T @ Jp[:, fixed_cols])
    assert H[fixed_cols, FIXED * n:].abs().max() == 0


def test_gradient_is_half_the_cost_gradient(window):
    """``g`` = 1/2 d(cost)/d(x, betas) by autograd (robust weights held); betas without penetration's share."""
    problem, x, betas, data, fixed_kp = window
    T, n = x.shape[0], problem.n
    ev = problem.evaluate(x, betas, data, True, fixed_kp)
    _, g = problem.assemble(problem.blocks(ev, data, True), T)
    pen = next(t for t in problem.terms if t.name == "penetration")

    def cost(xx, bb, with_pen_shape=True):
        e = problem.evaluate(xx, bb, data, False, fixed_kp)
        c = sum((t.block(e, data, False).res ** 2).sum() for t in problem.terms if t is not pen)
        bp = bb if with_pen_shape else bb.detach()
        return c + (penetration_twin(pen, xx, bp, problem, data, fixed_kp) ** 2).sum()

    xx, bb = x.clone().requires_grad_(True), betas.clone().requires_grad_(True)
    cost(xx, bb, with_pen_shape=False).backward()
    grad = torch.cat([xx.grad.reshape(-1), bb.grad]) / 2
    err = (g - grad).norm() / grad.norm()
    assert err < RTOL, f"relative gradient error {err:.2e}"
    assert g[:FIXED * n].abs().max() > 0  # the pose prior of the fixed slot (dropped by the solver's free set)
    # the penetration term's shape share is what g leaves out (its Jacobian omits shape, by design)
    xx, bb = x.clone().requires_grad_(True), betas.clone().requires_grad_(True)
    cost(xx, bb).backward()
    assert (g[T * n:] - bb.grad / 2).abs().max() > 1e-6 * grad.abs().max()


def test_levenberg_marquardt_lowers_the_cost_and_keeps_fixed_slots(window):
    problem, x, betas, data, fixed_kp = window
    x_new, b_new, info = problem.solve(x, betas, data, 6, fixed_kp)
    assert info.accepted >= 1 and info.iterations == 6
    assert info.cost_end < 0.5 * info.cost_start
    assert torch.equal(x_new[:FIXED], x[:FIXED])
    assert (x_new[FIXED:] - x[FIXED:]).abs().max() > 1e-4 and (b_new - betas).abs().max() > 0
    # the same objective (robust weights re-fixed at the start) is lower at the result, term by term in total
    ev = problem.evaluate(x, betas, data, True, fixed_kp)
    for t in problem.terms:
        t.prepare(ev, data)
    start = sum(float(b.cost) for _, b in problem.blocks(ev, data, False))
    end = sum(float(b.cost) for _, b in problem.blocks(problem.evaluate(x_new, b_new, data, False, fixed_kp), data,
                                                      False))
    assert start == pytest.approx(info.cost_start, rel=1e-12)
    assert end < start


def test_push_out_takes_fingertips_out_and_leaves_the_wrist(anny_right):
    from inscene.engine.window.pushout import push_fingers_out

    model = anny_right
    P = model.num_pose_joints
    problem = WindowProblem(model, build_terms(model, WindowConfig(), with_object=True))
    x = np.zeros(problem.n)
    x[:3] = [0.0, np.pi, 0.0]
    x[3:3 + 3 * P] = model.pose_prior.from_anatomical(model.pose_prior.mean[None]).reshape(-1).numpy()
    x[-3:] = [0.0, 0.0, 0.45]
    betas = np.zeros(model.num_betas)

    def vertices(xx):
        with torch.no_grad():
            return model.pose(problem.params(torch.as_tensor(xx[None]), torch.as_tensor(betas))).vertices[0].numpy()

    v = vertices(x)
    with torch.no_grad():
        kp0 = model.pose(problem.params(torch.as_tensor(x[None]), torch.as_tensor(betas)), with_vertices=False)
    kp0 = kp0.keypoints[0].numpy()
    # a wall across the fingers' direction (wrist -> middle fingertip), the fingertips 3 mm into it
    f = (kp0[12] - kp0[0]) / np.linalg.norm(kp0[12] - kp0[0])
    e1 = np.cross(f, [1.0, 0.0, 0.0])
    e1 /= np.linalg.norm(e1)
    T = np.eye(4)
    T[:3, :3] = np.stack([e1, np.cross(f, e1), f], axis=1)  # the wall's z along f
    reach = float((v @ f).max())
    T[:3, 3] = kp0[12] + f * ((reach - 0.003) - kp0[12] @ f + 0.025)
    block = sdf_grid(trimesh.creation.box(extents=(0.3, 0.3, 0.05)), resolution=64, cache=False)

    def depth(xx):
        d, _ = block.lookup((vertices(xx) - T[:3, 3]) @ T[:3, :3], gradient=False)
        return -float(np.min(d))

    before = depth(x)
    assert 0.0025 < before < 0.0035
    y = push_fingers_out(model, problem.params, x, betas, vertices(x), block, T)
    assert depth(y) < min(0.001, 0.25 * before)  # the joints' prior leaves < 1 mm of the 3
    np.testing.assert_array_equal(y[:3], x[:3])  # the hand's rotation and position are the window's
    np.testing.assert_array_equal(y[-3:], x[-3:])
    with torch.no_grad():
        kp = [model.pose(problem.params(torch.as_tensor(z[None]), torch.as_tensor(betas)), with_vertices=False)
              .keypoints[0].numpy() for z in (x, y)]
    np.testing.assert_allclose(kp[1][0], kp[0][0], atol=1e-12)  # the wrist keypoint does not move
    assert np.abs(y - x).max() < 0.3  # a few degrees, not a new pose
    # a hand clear of the object is left as it is
    T[:3, 3] += 0.01 * f
    assert push_fingers_out(model, problem.params, x, betas, vertices(x), block, T) is x
