"""Hand landmarks: decode the landmark network's outputs for crops back into the image.

For each crop the network gives 21 points (x, y, z) in crop pixels (z: depth
relative to the wrist, same scale as x, smaller is nearer the camera), a hand
presence probability, a handedness probability and 21 "world" points in metres
(a hand-centred metric frame, axes of the crop). Decoding maps the 2D points
through the crop's rectangle into image pixels, scales z to image pixels too,
and turns the world points by the crop's rotation so their axes are the camera's.

Handedness: the network's probability is that of a right hand as seen in an
ordinary (unmirrored) image — checked on the test photos, where it is > 0.95 for
every right hand and < 0.05 for every left one. For mirrored (selfie-view)
frames, pass ``mirrored=True`` and the label flips.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .rects import HandRect

NUM_LANDMARKS = 21


@dataclass
class HandLandmarks:
    """Landmarks of N hand crops.

    Attributes:
        points: (N, 21, 3) image pixels (x, y) and relative depth z (pixels, wrist ~0).
        world: (N, 21, 3) metres, hand-centred, camera axes (x right, y down, z forward).
        presence: (N,) probability that the crop shows a hand.
        right: (N,) probability that the hand is a right hand (in the unmirrored image).
    """

    points: np.ndarray
    world: np.ndarray
    presence: np.ndarray
    right: np.ndarray


def decode_landmarks(outputs: dict[str, np.ndarray], rects: list[HandRect], size: int = 224,
                     mirrored: bool = False) -> HandLandmarks:
    """Decode the landmark network's outputs for the crops of ``rects``.

    Args:
        outputs: ``landmarks`` (N, 63), ``presence`` (N, 1), ``handedness`` (N, 1), ``world`` (N, 63).
        rects: the N crops' rectangles, in order.
        size: crop side of the network input.
        mirrored: the frames are mirrored (selfie view); then the label flips.
    """
    n = len(rects)
    lm = outputs["landmarks"].reshape(n, NUM_LANDMARKS, 3).astype(np.float32)
    world = outputs["world"].reshape(n, NUM_LANDMARKS, 3).astype(np.float32)
    points = np.empty_like(lm)
    world_cam = np.empty_like(world)
    for i, r in enumerate(rects):
        points[i, :, :2] = r.to_image(lm[i, :, :2] / size)
        points[i, :, 2] = lm[i, :, 2] / size * r.side
        c, s = math.cos(r.angle), math.sin(r.angle)
        world_cam[i, :, 0] = world[i, :, 0] * c - world[i, :, 1] * s
        world_cam[i, :, 1] = world[i, :, 0] * s + world[i, :, 1] * c
        world_cam[i, :, 2] = world[i, :, 2]
    p_label = outputs["handedness"].reshape(n).astype(np.float32)
    right = 1.0 - p_label if mirrored else p_label
    return HandLandmarks(points, world_cam, outputs["presence"].reshape(n).astype(np.float32), right)
