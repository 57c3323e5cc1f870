"""Axis-angle rotations: exact, differentiable at zero, and ONNX-exportable.

The small-angle branch uses Taylor series so that values and gradients are finite
at the zero rotation (the rest pose, where fits start).
"""

from __future__ import annotations

import torch

_SMALL = 1e-4  # radians; below, sin(t)/t and (1 - cos t)/t^2 use their series


def axis_angle_to_matrix(rotvec: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula.

    Args:
        rotvec: (..., 3) axis times angle, radians.
    Returns:
        (..., 3, 3) rotation matrices.
    """
    x, y, z = rotvec.unbind(-1)
    t2 = x * x + y * y + z * z
    small = t2 < _SMALL * _SMALL
    t2_safe = torch.where(small, torch.ones_like(t2), t2)
    t = torch.sqrt(t2_safe)
    a = torch.where(small, 1.0 - t2 / 6.0, torch.sin(t) / t)  # sin(t) / t
    b = torch.where(small, 0.5 - t2 / 24.0, (1.0 - torch.cos(t)) / t2_safe)  # (1 - cos t) / t^2
    xx, yy, zz = b * x * x, b * y * y, b * z * z
    xy, xz, yz = b * x * y, b * x * z, b * y * z
    ax, ay, az = a * x, a * y, a * z
    rows = (
        1.0 - (yy + zz), xy - az, xz + ay,
        xy + az, 1.0 - (xx + zz), yz - ax,
        xz - ay, yz + ax, 1.0 - (xx + yy),
    )
    return torch.stack(rows, dim=-1).reshape(rotvec.shape[:-1] + (3, 3))


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`axis_angle_to_matrix` (angle in [0, pi]); not for autograd at pi.

    Args:
        matrix: (..., 3, 3) rotation matrices.
    Returns:
        (..., 3) axis-angle vectors.
    """
    import roma

    return roma.rotmat_to_rotvec(matrix)
