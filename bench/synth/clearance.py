"""Keep a moving hand out of the object and the table where the scripted path would cut into them.

The grasp itself is collision-free (``grasp``), but the frames around it (the reach,
the closing and opening fingers, the retreat) interpolate poses and may brush the
object or the table. Each such frame whose hand penetrates by more than ``TOL`` is
moved: back along the grasp's approach direction (object frame) by the smallest
distance that clears the object (bisection), then up by what clears the table.
Held frames are never moved: their hand is rigid with the object.
"""

from __future__ import annotations

import numpy as np

from .geometry import ObjectGeometry
from .handkit import HandKit, pose_hands
from .motion import PHASES, inv_T, make_T

TOL = 2e-4
"""Penetration left alone, metres."""


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


def clear_path(kit: HandKit, geom: ObjectGeometry, T_table_hand: np.ndarray, hand_pose: np.ndarray,
               phase: np.ndarray, T_table_obj: np.ndarray, approach_obj: np.ndarray) -> int:
    """Move the non-held frames of a hand path (in place) out of the object and the table; returns frames moved.

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
    moved = 0
    a = approach_obj / np.linalg.norm(approach_obj)
    for k, i in enumerate(frames):
        changed = False
        for _ in range(4):  # the two corrections can undo each other (fingers near the table and the object)
            T_obj_hand = inv_T(T_table_obj[i]) @ T_table_hand[i]
            if _object_depth(geom, local[k], T_obj_hand) > TOL:
                T_table_hand[i] = T_table_obj[i] @ make_T(None, -a * _back_off(geom, local[k], T_obj_hand, a)) \
                    @ T_obj_hand
                changed = True
            z = (local[k] @ T_table_hand[i, :3, :3].T + T_table_hand[i, :3, 3])[:, 2].min()
            if z >= -TOL:
                break
            T_table_hand[i, 2, 3] -= z - 0.5 * TOL
            changed = True
        moved += int(changed)
    return moved
