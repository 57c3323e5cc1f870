"""What stage 1 (the window) hands downstream, per frame and hand side.

A packet leaving the window stage carries ``packet.data["window"]``: a dict
side -> :class:`WindowHand` (or None where that hand is not tracked), and still
``packet.data["object_pose"]`` (``T_cam_obj`` (4, 4) or None) from the object stage
and ``packet.data["hands2d"]`` from the detector.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class WindowHand:
    """Stage 1's decision for one hand in one frame (camera frame, metres)."""

    side: str
    """"right" or "left"."""
    global_orient: np.ndarray
    """(3,) axis-angle of the hand's root, camera frame."""
    hand_pose: np.ndarray
    """(P, 3) the hand model's joint rotations (axis-angle)."""
    betas: np.ndarray
    """(S,) shape (one per hand over time; the running estimate when this frame was decided)."""
    transl: np.ndarray
    """(3,) translation, camera frame."""
    keypoints: np.ndarray
    """(21, 3) fitted keypoints, camera frame."""
    keypoints2d: np.ndarray
    """(21, 2) observed 2D keypoints, pixels (NaN: missing)."""
    confidence: np.ndarray
    """(21,) their confidence (0: missing)."""
    in_contact: bool
    """The hand touches the object in this frame (contact detection, with hysteresis)."""
    onset: bool = False
    """First frame of a contact."""
    release: bool = False
    """First frame after a contact ended."""
    contact_points: np.ndarray | None = None
    """(K, 3) contact points on the object's surface, object frame (None: no contact)."""

    @property
    def pose(self) -> np.ndarray:
        """(1 + P, 3): global rotation then joints (the store's ``pose`` layout)."""
        return np.concatenate([self.global_orient[None], self.hand_pose], axis=0)
