"""Keep a moving hand out of the object and the table where the scripted path would cut into them.

The grasp itself is collision-free (``grasp``), but the frames around it (the reach,
the closing and opening fingers, the retreat) interpolate poses and may brush the
object or the table. Each such frame whose hand penetrates by more than ``TOL`` is
moved out of the object along its surface: the damped least-squares translation that
brings the vertices inside onto the surface, repeated a few times (fingers closing
into the surface: millimetres); when that cannot clear it (fingers pressing in from
opposite sides), what is left is kept if it is within ``SOFT_TOL`` while the fingers
close or open, else the hand backs off along the grasp's approach direction by the
smallest distance that clears the object (bisection). Then it is moved up by what
clears the table. Held frames are never moved: their hand is rigid with the object.
The corrections found frame by frame are then smoothed over time and the frames
cleared again from there (:func:`clear_path`), so the truth does not zigzag by
millimetres from frame to frame where the fingers close.
Backing off along the approach had been the only remedy until generator version 2: a
finger 0.4 mm inside moved its frame's whole hand back by up to 61 mm, a one-frame
jump in the ground truth at the grasp's onset and release.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from .geometry import ObjectGeometry
from .handkit import HandKit, pose_hands
from .motion import PHASES, inv_T, make_T

TOL = 2e-4
"""Penetration left alone, metres."""
SOFT_TOL = 2.5e-3
"""Penetration left to fingers closing on the object or opening from it (skin is soft: a fingertip's pad gives a few
millimetres) when moving the hand out of the object along its surface cannot clear it without pushing another finger
in, metres (1 mm until generator version 3, which backed a frame of ``mug_static`` seed 0 off by 45 mm)."""
CLOSING = (PHASES["grasp"], PHASES["release"])
SMOOTH_FRAMES = 2.0
"""Std of the Gaussian that smooths the frames' corrections over time, frames."""
SMOOTH_PASSES = 2
"""Smooth-then-clear passes after the first clearing."""


def _object_depth(geom: ObjectGeometry, local: np.ndarray, T_obj_hand: np.ndarray) -> float:
    v = local @ T_obj_hand[:3, :3].T + T_obj_hand[:3, 3]
    return float(max(0.0, -geom.signed_distance(v).min()))


def _back_off(geom: ObjectGeometry, local: np.ndarray, T_obj_hand: np.ndarray, a: np.ndarray) -> float:
    """Smallest distance (bisection) to move the hand back along -a until it is out of the object."""
    lo, hi = 0.0, 0.02
    while _object_depth(geom, local, make_T(None, -a * hi) @ T_obj_hand) > TOL and hi < 0.3:
        hi *= 2.0
    for _ in range(14):
        mid = 0.5 * (lo + hi)
        if _object_depth(geom, local, make_T(None, -a * mid) @ T_obj_hand) > TOL:
            lo = mid
        else:
            hi = mid
    return hi


def _push_out(geom: ObjectGeometry, local: np.ndarray, T_obj_hand: np.ndarray,
              steps: int = 8) -> tuple[np.ndarray, float]:
    """``T_obj_hand`` moved out of the object along its surface, step by step; the least penetrating pose found
    and its depth (> TOL when moving out on one side pushes the other side in: a grasp closing on both sides)."""
    T, best = T_obj_hand.copy(), (T_obj_hand.copy(), np.inf)
    for _ in range(steps + 1):
        v = local @ T[:3, :3].T + T[:3, 3]
        d = geom.signed_distance(v)
        depth = float(max(0.0, -d.min()))
        if depth < best[1]:
            best = (T.copy(), depth)
        if depth <= TOL:
            break
        # the translation that brings every vertex inside onto the surface, least squares (damped): one finger
        # pressing in moves the hand out by its depth; fingers pressing in from opposite sides share it
        ins = d < 0
        out = geom.closest_points(v[ins]) - v[ins]  # to the nearest surface point: outward, |out| = depth
        depth_j = np.linalg.norm(out, axis=1)
        nrm = out / np.maximum(depth_j[:, None], 1e-12)
        A = nrm.T @ nrm + 0.05 * len(nrm) * np.eye(3)
        step = np.linalg.solve(A, nrm.T @ (depth_j + 0.5 * TOL))
        cap = 2.0 * float(depth_j.max()) + TOL
        step *= min(1.0, cap / max(float(np.linalg.norm(step)), 1e-12))
        T = make_T(None, step) @ T
    return best


def clear_path(kit: HandKit, geom: ObjectGeometry, T_table_hand: np.ndarray, hand_pose: np.ndarray,
               phase: np.ndarray, T_table_obj: np.ndarray, approach_obj: np.ndarray) -> int:
    """Move the non-held frames of a hand path (in place) out of the object and the table; returns frames moved.

    Each frame is cleared on its own (:func:`_clear_frames`), then the corrections (translations) are smoothed
    over time (a Gaussian of ``SMOOTH_FRAMES``, within each run of non-held frames) and the frames cleared again
    from there, ``SMOOTH_PASSES`` times: frame-by-frame corrections differ by millimetres from one frame to the
    next (fingers pressing in as they close), which made the ground truth zigzag exactly at the grasp's onset.

    Args:
        T_table_hand: (T, 4, 4) hand rest-frame poses, table frame (modified).
        hand_pose: (T, P, 3); phase: (T,) codes (``motion.PHASES``); T_table_obj: (T, 4, 4);
        approach_obj: (3,) the grasp's approach direction, object frame.
    """
    frames = np.flatnonzero(phase != PHASES["hold"])
    if len(frames) == 0:
        return 0
    n = len(frames)
    zeros = np.zeros((n, 3))
    local, _ = pose_hands(kit.model, zeros, hand_pose[frames], np.repeat(kit.betas[None], n, 0), zeros)
    a = approach_obj / np.linalg.norm(approach_obj)
    scripted = T_table_hand[frames, :3, 3].copy()
    moved = _clear_frames(geom, local, frames, T_table_hand, phase, T_table_obj, a)
    runs = np.split(np.arange(n), np.flatnonzero(np.diff(frames) > 1) + 1)
    for _ in range(SMOOTH_PASSES):
        if not moved.any():
            break
        corr = T_table_hand[frames, :3, 3] - scripted
        for r in runs:
            corr[r] = gaussian_filter1d(corr[r], SMOOTH_FRAMES, axis=0, mode="nearest")
        T_table_hand[frames, :3, 3] = scripted + corr
        moved |= _clear_frames(geom, local, frames, T_table_hand, phase, T_table_obj, a)
    return int(moved.sum())


def _clear_frames(geom: ObjectGeometry, local: np.ndarray, frames: np.ndarray, T_table_hand: np.ndarray,
                  phase: np.ndarray, T_table_obj: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Clear each of ``frames`` (hand vertices ``local`` (n, V, 3) in the hand's frame) on its own, in place:
    whether each was moved (n,)."""
    moved = np.zeros(len(frames), bool)
    for k, i in enumerate(frames):
        for _ in range(4):  # the two corrections can undo each other (fingers near the table and the object)
            T_obj_hand = inv_T(T_table_obj[i]) @ T_table_hand[i]
            if _object_depth(geom, local[k], T_obj_hand) > TOL:
                pushed, depth = _push_out(geom, local[k], T_obj_hand)
                if depth > TOL and not (depth <= SOFT_TOL and phase[i] in CLOSING):
                    pushed = make_T(None, -a * _back_off(geom, local[k], T_obj_hand, a)) @ T_obj_hand
                T_table_hand[i] = T_table_obj[i] @ pushed
                moved[k] = True
            z = (local[k] @ T_table_hand[i, :3, :3].T + T_table_hand[i, :3, 3])[:, 2].min()
            if z >= -TOL:
                break
            T_table_hand[i, 2, 3] -= z - 0.5 * TOL
            moved[k] = True
    return moved
