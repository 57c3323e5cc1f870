"""Synthetic hands with ground truth, shared by the tests and the benchmark.

Anatomical random hands of a model in front of a known camera, their projected
keypoints with pixel noise, and the root-relative error used to score fits.
"""

from __future__ import annotations

import torch

from .fit_init import palm_frame
from .fitting import project
from .model import HandModel
from .params import HandParams
from .rotations import axis_angle_to_matrix, matrix_to_axis_angle


def default_camera(dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(3, 3) intrinsics of a 640x480 camera with a 600 px focal length (about 56 degrees across)."""
    return torch.tensor([[600.0, 0.0, 320.0], [0.0, 600.0, 240.0], [0.0, 0.0, 1.0]], dtype=dtype)


def sample_hands(model: HandModel, n: int, seed: int = 0, spread: float = 1.0, tilt: float = 0.35,
                 size_std: float = 0.0) -> HandParams:
    """Random anatomical hands in front of the camera.

    Poses from the model's prior (``spread`` times its std) clamped into its joint
    limits; orientation fingers-up with the palm towards the camera, rotated by a
    random axis-angle of std ``tilt`` rad per axis; depth 0.4-0.8 m; shape zero
    except the first shape parameter with std ``size_std``.
    """
    g = torch.Generator().manual_seed(seed)
    dtype = model.dtype
    pose = model.pose_prior.sample(n, g, spread=spread, limits=model.joint_limits).to(dtype)
    with torch.no_grad():
        rest = model(torch.zeros(1, 3, dtype=dtype), torch.zeros(1, model.num_pose_joints, 3, dtype=dtype),
                     with_vertices=False).keypoints[0]
    frame = palm_frame(rest, model.side)  # columns: distal, radial, palmar (model axes)
    distal, palmar = torch.tensor([0.0, -1.0, 0.0], dtype=dtype), torch.tensor([0.0, 0.0, -1.0], dtype=dtype)
    radial = torch.linalg.cross(palmar, distal)
    target = torch.stack([distal, radial, palmar], dim=1)
    if torch.det(target) * torch.det(frame) < 0:
        target = torch.stack([distal, -radial, palmar], dim=1)
    base = target @ frame.T
    turn = axis_angle_to_matrix((torch.randn(n, 3, generator=g) * tilt).to(dtype))
    global_orient = matrix_to_axis_angle(turn @ base)
    betas = torch.zeros(n, model.num_betas, dtype=dtype)
    if size_std > 0:
        betas[:, 0] = size_std * torch.randn(n, generator=g).to(dtype)
    transl = torch.stack([0.08 * torch.randn(n, generator=g), 0.06 * torch.randn(n, generator=g),
                          0.4 + 0.4 * torch.rand(n, generator=g)], dim=1).to(dtype)
    return HandParams(global_orient, pose, betas, transl)


def perturb(params: HandParams, seed: int = 0, rot: float = 0.05, joint: float = 0.1,
            transl: float = 0.01) -> HandParams:
    """A nearby estimate (as the previous frame's fit would be): Gaussian noise of std ``rot``
    rad on the global rotation, ``joint`` rad on each joint rotation, ``transl`` m."""
    g = torch.Generator().manual_seed(seed + 7)

    def noise(t: torch.Tensor, s: float) -> torch.Tensor:
        return t + s * torch.randn(t.shape, generator=g).to(t.dtype)

    return HandParams(noise(params.global_orient, rot), noise(params.hand_pose, joint), params.betas.clone(),
                      noise(params.transl, transl))


def observe(model: HandModel, params: HandParams, K: torch.Tensor, noise_px: float = 0.0,
            seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Projected keypoints (B, 21, 2) with Gaussian pixel noise, confidences (B, 21) of one,
    and the true camera-frame keypoints (B, 21, 3)."""
    g = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        kp = model.pose(params, with_vertices=False).keypoints
    uv = project(kp, K.to(kp.dtype).expand(params.batch_size, 3, 3))
    uv = uv + noise_px * torch.randn(uv.shape, generator=g).to(uv.dtype)
    return uv, torch.ones(uv.shape[:2], dtype=uv.dtype), kp


def mpjpe_mm(estimate: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """(B,) root-relative (wrist) mean per-joint position error, mm, of (B, 21, 3) keypoints."""
    return ((estimate - estimate[:, :1]) - (truth - truth[:, :1])).norm(dim=-1).mean(-1) * 1000.0
