"""Rotated hand rectangles: where the landmark network looks.

A :class:`HandRect` is a square in image pixels, rotated so that the hand points
"up" in the crop (wrist at the bottom, fingers at the top). It comes either from
a palm detection (the palm box, turned by the wrist -> middle-finger-base
direction, moved towards the fingers and enlarged to hold the whole hand), or,
when tracking, from the previous frame's landmarks (their extent in the hand's
own rotated frame, slightly enlarged). Enlargement factors are the palm
detector's conventions: palm boxes x2.6 shifted half a box towards the fingers,
landmark boxes x2.0 shifted a tenth of a box.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .imaging import rect_corners


def wrap_angle(a: float) -> float:
    """``a`` wrapped to [-pi, pi)."""
    return (a + math.pi) % (2 * math.pi) - math.pi


def up_angle(start: np.ndarray, end: np.ndarray) -> float:
    """Rotation that makes the direction ``start -> end`` (image pixels, y down) point up."""
    return wrap_angle(math.pi / 2 - math.atan2(-(float(end[1]) - float(start[1])), float(end[0]) - float(start[0])))


@dataclass(frozen=True)
class HandRect:
    """A rotated square in image pixels.

    Attributes:
        cx: centre x, pixels.
        cy: centre y, pixels.
        side: side length, pixels.
        angle: rotation in radians; the crop's up direction is ``(sin a, -cos a)`` in the image.
    """

    cx: float
    cy: float
    side: float
    angle: float

    def corners(self) -> np.ndarray:
        """(4, 2) corners in image pixels."""
        return rect_corners(self.cx, self.cy, self.side, self.angle)

    def bbox(self) -> np.ndarray:
        """(4,) axis-aligned bounds (x0, y0, x1, y1) of the corners."""
        c = self.corners()
        return np.array([c[:, 0].min(), c[:, 1].min(), c[:, 0].max(), c[:, 1].max()], dtype=np.float32)

    def to_image(self, local: np.ndarray) -> np.ndarray:
        """Crop coordinates normalised to [0, 1] ``(..., 2)`` -> image pixels ``(..., 2)``."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        lx = (local[..., 0] - 0.5) * self.side
        ly = (local[..., 1] - 0.5) * self.side
        return np.stack([self.cx + lx * c - ly * s, self.cy + lx * s + ly * c], axis=-1).astype(np.float32)

    def transformed(self, scale: float, shift_y: float, shift_x: float = 0.0) -> HandRect:
        """Shift by (shift_x, shift_y) sides in the rect's own frame, then scale the side."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        dx = self.side * (shift_x * c - shift_y * s)
        dy = self.side * (shift_x * s + shift_y * c)
        return HandRect(self.cx + dx, self.cy + dy, self.side * scale, self.angle)


def rect_from_palm(box: np.ndarray, keypoints: np.ndarray, scale: float = 2.6, shift_y: float = -0.5) -> HandRect:
    """The hand rectangle of a palm detection.

    Args:
        box: (4,) palm box (x0, y0, x1, y1) in image pixels.
        keypoints: (7, 2) palm keypoints in image pixels (0: wrist centre, 2: middle finger base).
    """
    w, h = float(box[2] - box[0]), float(box[3] - box[1])
    angle = up_angle(keypoints[0], keypoints[2])
    side = max(w, h)
    # Shift in units of the box height (the box is square after this in any case).
    c, s = math.cos(angle), math.sin(angle)
    cx = (box[0] + box[2]) / 2 - h * shift_y * s
    cy = (box[1] + box[3]) / 2 + h * shift_y * c
    return HandRect(float(cx), float(cy), side * scale, angle)


_PALM_BASE = (0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18)
"""Landmarks that move little with finger articulation (wrist, thumb base, MCP and PIP joints)."""


def rect_from_landmarks(points: np.ndarray, scale: float = 2.0, shift_y: float = -0.1) -> HandRect:
    """The next frame's hand rectangle from this frame's landmarks ``(21, 2+)`` image pixels.

    Rotation: wrist -> the middle of the index/ring MCPs averaged with the middle
    MCP. Extent: bounds of the stable landmarks (:data:`_PALM_BASE`) in that
    rotated frame, squared on the long side.
    """
    p = np.asarray(points, dtype=np.float64)[:, :2]
    mid = ((p[5] + p[13]) / 2 + p[9]) / 2
    angle = up_angle(p[0], mid)
    c, s = math.cos(angle), math.sin(angle)
    base = p[list(_PALM_BASE)]
    # Into the rect frame (inverse rotation), bounds, back.
    lx = base[:, 0] * c + base[:, 1] * s
    ly = -base[:, 0] * s + base[:, 1] * c
    bx, by = (lx.min() + lx.max()) / 2, (ly.min() + ly.max()) / 2
    w, h = lx.max() - lx.min(), ly.max() - ly.min()
    cx, cy = bx * c - by * s, bx * s + by * c
    side = max(w, h)
    rect = HandRect(float(cx), float(cy), float(side), angle)
    return rect.transformed(scale, shift_y)
