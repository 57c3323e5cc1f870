"""Cold-start guesses for the per-frame fit: hand orientation and camera-frame translation.

From 2D keypoints alone the palm's orientation is ambiguous (palm or back towards
the camera, tilt), so several candidates are proposed: the palm's distal axis
aligned with the observed wrist-to-middle-MCP direction, palm or back facing the
camera, tilted about the radial axis. With relative 3D landmarks the orientation is
solved directly (weighted Kabsch on the palm keypoints). Depth comes from the
model's size: the ratio of 3D to 2D palm extent times the focal length.
"""

from __future__ import annotations

import math

import torch

from .keypoints import PALM_KEYPOINTS
from .rotations import axis_angle_to_matrix, matrix_to_axis_angle

TILTS_DEG = (-40.0, 0.0, 40.0)


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-9)


def palm_frame(points: torch.Tensor, side: str) -> torch.Tensor:
    """(..., 3, 3) columns (distal, radial, palmar) of (..., 21, 3) keypoints."""
    distal = _unit(points[..., 9, :] - points[..., 0, :])
    radial = points[..., 5, :] - points[..., 17, :]
    radial = _unit(radial - (radial * distal).sum(-1, keepdim=True) * distal)
    sign = 1.0 if side == "right" else -1.0
    palmar = -sign * torch.linalg.cross(distal, radial)
    return torch.stack([distal, radial, palmar], dim=-1)


def candidate_rotations(model_kp: torch.Tensor, uv: torch.Tensor, side: str) -> torch.Tensor:
    """Candidate hand rotations from 2D keypoints.

    Args:
        model_kp: (21, 3) model keypoints at zero rotation.
        uv: (B, 21, 2) observed keypoints, pixels.
    Returns:
        (B, C, 3) axis-angle candidates, C = 2 * len(TILTS_DEG).
    """
    frame = palm_frame(model_kp, side)  # (3, 3) model axes
    d2 = uv[:, 9] - uv[:, 0]
    d2 = d2 / d2.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    zeros = torch.zeros_like(d2[:, :1])
    distal = torch.cat([d2, zeros], dim=-1)  # (B, 3) in the image plane
    out = []
    for facing in (-1.0, 1.0):  # palmar towards the camera (-z) or away (+z)
        palmar = torch.zeros_like(distal)
        palmar[:, 2] = facing
        radial = torch.linalg.cross(palmar, distal)
        target = torch.stack([distal, radial, palmar], dim=-1)
        if torch.det(frame) * torch.det(target[0]) < 0:
            target = torch.stack([distal, -radial, palmar], dim=-1)
        base = target @ frame.transpose(-1, -2)  # maps model palm axes onto the target
        for tilt in TILTS_DEG:
            axis = base @ frame[:, 1]  # the hand's radial axis, camera frame
            tilt_rot = axis_angle_to_matrix(axis * math.radians(tilt))
            out.append(matrix_to_axis_angle(tilt_rot @ base))
    return torch.stack(out, dim=1)


def kabsch_rotation(model_kp: torch.Tensor, landmarks: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(B, 3) axis-angle of the rotation best mapping the model's palm keypoints onto the landmarks.

    Args:
        model_kp: (21, 3); landmarks: (B, 21, 3) any origin; weights: (B, 21).
    """
    idx = list(PALM_KEYPOINTS)
    a = model_kp[idx][None].expand(landmarks.shape[0], -1, -1)
    b = landmarks[:, idx]
    w = weights[:, idx, None].clamp_min(1e-6)
    a = a - (w * a).sum(1, keepdim=True) / w.sum(1, keepdim=True)
    b = b - (w * b).sum(1, keepdim=True) / w.sum(1, keepdim=True)
    cov = (b * w).transpose(1, 2) @ a  # (B, 3, 3)
    u, _, vt = torch.linalg.svd(cov)
    d = torch.sign(torch.det(u @ vt))
    fix = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], dim=-1))
    return matrix_to_axis_angle(u @ fix @ vt)


def initial_translation(model_kp: torch.Tensor, rotvec: torch.Tensor, uv: torch.Tensor, conf: torch.Tensor,
                        K: torch.Tensor) -> torch.Tensor:
    """(B, 3) translation putting the rotated model's wrist on the observed wrist ray at the
    depth where its palm has the observed extent.

    Args:
        model_kp: (21, 3) model keypoints at zero rotation and translation.
        rotvec: (B, 3); uv: (B, 21, 2); conf: (B, 21); K: (B, 3, 3).
    """
    idx = list(PALM_KEYPOINTS)
    rot = axis_angle_to_matrix(rotvec)
    pts = model_kp[idx] @ rot.transpose(-1, -2)  # (B, 6, 3)
    w = conf[:, idx]
    pair_w = w[:, :, None] * w[:, None, :]
    size3 = ((pts[:, :, None, :2] - pts[:, None, :, :2]).norm(dim=-1) * pair_w).sum((1, 2))
    size2 = ((uv[:, idx, None] - uv[:, None, idx]).norm(dim=-1) * pair_w).sum((1, 2))
    focal = 0.5 * (K[:, 0, 0] + K[:, 1, 1])
    depth = (focal * size3 / size2.clamp_min(1e-6)).clamp(0.05, 20.0)
    anchor = (w[:, :, None] * uv[:, idx]).sum(1) / w.sum(1, keepdim=True).clamp_min(1e-6)
    ray = torch.linalg.solve(K, torch.cat([anchor, torch.ones_like(anchor[:, :1])], dim=-1)[..., None])[..., 0]
    centre = (w[:, :, None] * pts).sum(1) / w.sum(1, keepdim=True).clamp_min(1e-6)
    return ray / ray[:, 2:3] * depth[:, None] - centre
