"""Fingers out of the object: a decided contact frame's finger joints turned so no vertex stays inside.

The window's penetration term is soft (a noisy object pose puts the true hand a few
millimetres inside the estimated object, and a stiff term drags the whole hand after
the tracker's noise). What is left inside in a contact frame is almost always a
fingertip (the deepest vertex sits on a distal phalanx in ~90 % of the suite's contact
frames), so a decided contact frame gets a short Gauss-Newton pass over its finger
joints alone: the vertices inside the object or within ``margin`` of its surface are
pulled to ``margin`` outside, each joint held near the window's solution (``pose_sigma``
per millimetre of penetration); a frame with nothing inside is left as it is. The wrist, the
hand's rotation and its translation do not move, so the hand's position (MRPE) is the
window's; only the fingers give way.
"""

from __future__ import annotations

import numpy as np
import torch

from inscene.models.hands.jacobian import vertices_and_jacobian_fast

RIGID_TO_WRIST = 0.9
"""Vertices with at least this skinning weight on the wrist move with the hand, not the fingers."""


def push_fingers_out(model, params_of, x: np.ndarray, betas: np.ndarray, vertices: np.ndarray, sdf,
                     T_cam_obj: np.ndarray, pose_sigma: float = 0.03, iterations: int = 4, margin: float = 0.0005,
                     near: float = 0.005) -> np.ndarray:
    """``x`` (global orient 3, hand pose 3P, translation 3) with the hand pose moved so that the hand's vertices
    leave the object (pose ``T_cam_obj``, signed distance ``sdf`` in the object frame).

    Minimizes ``sum (margin - d_i)^2`` over the vertices with ``d_i < margin`` plus
    ``(1 mm / pose_sigma)^2 |dtheta|^2`` (the joints' change from ``x``) by ``iterations``
    Gauss-Newton steps, from the hand's ``vertices`` (V, 3) at ``x``: those within ``near``
    of the surface move with their Jacobian (a few degrees at a lever of a few cm: well under
    0.1 mm off), the SDF looked up exactly at each step. ``params_of(x, betas)`` turns (1, n)
    parameters into the model's ``HandParams``. Returns ``x`` itself when no vertex is inside.
    """
    P = model.num_pose_joints
    pose = slice(3, 3 + 3 * P)
    R, o = T_cam_obj[:3, :3], T_cam_obj[:3, 3]
    dt = model.dtype
    v = np.asarray(vertices, dtype=np.float64)
    d, _ = sdf.lookup((v - o) @ R, gradient=False)
    d = np.asarray(d)
    if d.min() >= 0:
        return x
    with torch.no_grad():
        p = params_of(torch.as_tensor(np.asarray(x)[None], dtype=dt), torch.as_tensor(betas, dtype=dt))
    # vertices skinned (almost) to the wrist alone cannot move with the fingers: leave them out
    movable = model.weights[:, 0].numpy() < RIGID_TO_WRIST
    ids = np.flatnonzero((d < near) & movable)
    if not len(ids):
        return x
    _, J = vertices_and_jacobian_fast(model, p, torch.as_tensor(ids))
    J = J[0, :, :, pose].double().numpy()  # (M, 3, 3P)
    lam = (1e-3 / pose_sigma) ** 2
    step = np.zeros(3 * P)
    for _ in range(iterations):
        dl, gl = sdf.lookup((v[ids] + J @ step - o) @ R, gradient=True)
        act = np.flatnonzero(np.asarray(dl) < margin)
        if not len(act):
            break
        # d(distance)/d(joint angles): the SDF gradient (camera frame) through the vertex Jacobian
        A = np.einsum("mx,mxl->ml", np.asarray(gl)[act] @ R.T, J[act])
        H = A.T @ A + lam * np.eye(3 * P)
        step += np.linalg.solve(H, A.T @ (margin - np.asarray(dl)[act]) - lam * step)
    out = np.array(x, dtype=np.float64)
    out[pose] += step
    return out
