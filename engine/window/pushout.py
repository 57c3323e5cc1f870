"""Fingers out of the object: a decided contact frame's finger joints turned so no vertex stays inside.

The window's penetration term is soft (a noisy object pose puts the true hand a few
millimetres inside the estimated object, and a stiff term drags the whole hand after
the tracker's noise). What is left inside in a contact frame is almost always a
fingertip (the deepest vertex sits on a distal phalanx in ~90 % of the suite's contact
frames), so a decided contact frame gets a short Gauss-Newton pass over its finger
joints alone: every vertex deeper than ``-margin`` in the object's SDF is pulled to
``margin`` outside, each joint held near the window's solution (``pose_sigma`` per
millimetre of penetration). The wrist, the hand's rotation and its translation do not
move, so the hand's position (MRPE) is the window's; only the fingers give way.
"""

from __future__ import annotations

import numpy as np
import torch

from inscene.models.hands.jacobian import vertices_and_jacobian


def push_fingers_out(model, params_of, x: np.ndarray, betas: np.ndarray, sdf, T_cam_obj: np.ndarray,
                     pose_sigma: float = 0.03, iterations: int = 4, margin: float = 0.0005) -> np.ndarray:
    """``x`` (global orient 3, hand pose 3P, translation 3) with the hand pose moved so that the hand's vertices
    leave the object (pose ``T_cam_obj``, signed distance ``sdf`` in the object frame).

    Minimizes ``sum (margin - d_i)^2`` over the vertices with ``d_i < margin`` plus
    ``(1 mm / pose_sigma)^2 |dtheta|^2`` (the joints' change from ``x``), linearized
    ``iterations`` times (stops early once nothing is inside). ``params_of(x, betas)``
    turns (1, n) parameters into the model's ``HandParams``.
    """
    P = model.num_pose_joints
    pose = slice(3, 3 + 3 * P)
    x = np.array(x, dtype=np.float64)
    start = x[pose].copy()
    lam = (1e-3 / pose_sigma) ** 2
    R, o = T_cam_obj[:3, :3], T_cam_obj[:3, 3]
    dt = model.dtype
    for _ in range(iterations):
        with torch.no_grad():
            p = params_of(torch.as_tensor(x[None], dtype=dt), torch.as_tensor(betas, dtype=dt))
            v = model.pose(p, with_vertices=True).vertices[0].double().numpy()
        d, g = sdf.lookup((v - o) @ R, gradient=True)
        inside = np.flatnonzero(np.asarray(d) < margin)
        if not len(inside):
            break
        _, J = vertices_and_jacobian(model, p, torch.as_tensor(inside))
        # d(distance)/d(joint angles): the SDF gradient (camera frame) through the vertex Jacobian
        A = np.einsum("mx,mxl->ml", np.asarray(g)[inside] @ R.T, J[0, :, :, pose].double().numpy())
        r = margin - np.asarray(d)[inside]
        H = A.T @ A + lam * np.eye(3 * P)
        x[pose] += np.linalg.solve(H, A.T @ r - lam * (x[pose] - start))
    return x
