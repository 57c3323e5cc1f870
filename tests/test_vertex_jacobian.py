"""Analytic vertex Jacobian (``vertices_and_jacobian``) against the model's forward and autograd, float64."""

from __future__ import annotations

import pytest
import torch
from hand_fixtures import sample_hands
from inscene.models.hands import HandParams
from inscene.models.hands.jacobian import (
    keypoints_and_jacobian,
    pose_fast,
    vertices_and_jacobian,
    vertices_and_jacobian_fast,
)

F64 = torch.float64
TOL = 1e-12  # analytic vs autograd, metres per unit parameter (observed <= 3e-16: float64 rounding)


@pytest.fixture(params=["anny_right", "anny_left", "mano_right", "mano_left"])
def model(request, anny_right, anny_left, mano_synthetic):
    return {"anny_right": anny_right, "anny_left": anny_left, "mano_right": mano_synthetic["right"],
            "mano_left": mano_synthetic["left"]}[request.param]


def _params(model, n: int, seed: int) -> HandParams:
    p = sample_hands(model, n, seed=seed)
    g = torch.Generator().manual_seed(seed)
    p.betas = 0.3 * torch.randn(p.betas.shape, generator=g, dtype=F64)
    return p


def _flat(p: HandParams) -> torch.Tensor:
    return torch.cat([p.global_orient, p.hand_pose.flatten(1), p.betas, p.transl], dim=1)


def _unflat(model, x: torch.Tensor) -> HandParams:
    P, S = model.num_pose_joints, model.num_betas
    return HandParams(x[:, :3], x[:, 3:3 + 3 * P].reshape(-1, P, 3), x[:, 3 + 3 * P:3 + 3 * P + S], x[:, -3:])


def _ids(model, m: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, model.num_vertices, (m,), generator=g)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's vmap of forward-mode AD uses torch.jit.script
@pytest.mark.parametrize("zero_pose", [False, True])
def test_vertex_jacobian_matches_autograd(model, zero_pose):
    p = model.zero_params(2) if zero_pose else _params(model, 2, 3)
    if zero_pose:
        p.betas = torch.tensor([[0.2, -0.1] + [0.0] * (model.num_betas - 2)] * 2, dtype=F64)[:, :model.num_betas]
    ids = torch.cat([_ids(model, 40, 1), model.tip_vertices, model.regions["palm"][:5]])
    pts, jac = vertices_and_jacobian(model, p, ids)
    full = model.pose(p).vertices
    torch.testing.assert_close(pts, full[:, ids], rtol=0, atol=1e-12)
    x = _flat(p)
    for b in range(p.batch_size):
        def f(xb: torch.Tensor, b: int = b) -> torch.Tensor:
            return model.pose(_unflat(model, xb[None])).vertices[0, ids]

        auto = torch.autograd.functional.jacobian(f, x[b], vectorize=True, strategy="forward-mode")  # (M, 3, N)
        assert jac[b].shape == auto.shape
        assert (jac[b] - auto).abs().max() < TOL


def test_vertex_jacobian_matches_finite_differences(mano_synthetic):
    """MANO pose correctives included: central differences, h = 1e-6 (error ~h^2 plus rounding)."""
    model = mano_synthetic["right"]
    p = _params(model, 1, 7)
    ids = _ids(model, 30, 2)
    _, jac = vertices_and_jacobian(model, p, ids)
    x = _flat(p)
    h = 1e-6

    def f(x: torch.Tensor) -> torch.Tensor:
        return model.pose(_unflat(model, x)).vertices[:, ids]

    numeric = torch.stack([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in torch.eye(x.shape[1], dtype=F64)], -1)
    assert (jac - numeric).abs().max() < 1e-7


def test_tip_vertices_agree_with_the_keypoint_jacobian(model):
    p = _params(model, 3, 5)
    kp, kjac = keypoints_and_jacobian(model, p)
    pts, vjac = vertices_and_jacobian(model, p, model.tip_vertices)
    tips = [4, 8, 12, 16, 20]
    torch.testing.assert_close(pts, kp[:, tips], rtol=0, atol=1e-12)
    torch.testing.assert_close(vjac, kjac[:, tips], rtol=0, atol=1e-12)


def test_float32_and_bad_ids(anny_right32):
    p = anny_right32.zero_params(4)
    ids = anny_right32.regions["index_pad"]
    pts, jac = vertices_and_jacobian(anny_right32, p, ids)
    assert pts.dtype == torch.float32 and jac.shape == (4, len(ids), 3, 3 + 3 * anny_right32.num_pose_joints
                                                           + anny_right32.num_betas + 3)
    with pytest.raises(ValueError, match="vertex_ids"):
        vertices_and_jacobian(anny_right32, p, torch.tensor([anny_right32.num_vertices]))
    with pytest.raises(ValueError, match="vertex_ids"):
        vertices_and_jacobian(anny_right32, p, ids[None])


def test_numba_vertex_jacobian_equals_the_torch_one(model):
    """The numba kernel (``kernels.handkin``) against its naive twin (the torch formulation above, itself checked
    against autograd): the same points and Jacobian for random hands, the rest pose, repeated ids, all four
    models (MANO with its pose correctives on every vertex)."""
    p = _params(model, 3, 11)
    p.global_orient[0] = 0.0
    p.hand_pose[0] = 0.0
    ids = torch.cat([_ids(model, 120, 3), torch.tensor([0, 0, model.num_vertices - 1])])
    v, jac = vertices_and_jacobian(model, p, ids)
    v_fast, jac_fast = vertices_and_jacobian_fast(model, p, ids)
    assert v_fast.dtype == v.dtype and jac_fast.shape == jac.shape
    assert (v_fast - v).abs().max() < 1e-12
    assert (jac_fast - jac).abs().max() < 1e-11
    with pytest.raises(ValueError, match="vertex_ids"):
        vertices_and_jacobian_fast(model, p, torch.tensor([model.num_vertices]))


def test_numba_pose_equals_the_model_forward(model):
    p = _params(model, 3, 12)
    p.hand_pose[0] = 0.0
    out = model.pose(p)
    kp, verts = pose_fast(model, p)
    assert abs(kp - out.keypoints.numpy()).max() < 1e-12
    assert abs(verts - out.vertices.numpy()).max() < 1e-12
    kp_only, none = pose_fast(model, p, with_vertices=False)
    assert none is None and abs(kp_only - kp).max() == 0.0
