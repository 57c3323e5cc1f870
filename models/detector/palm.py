"""Palm detection: decode the SSD head's 2016 anchors into palms in image pixels.

Per anchor the network gives 18 numbers — box centre offset (dx, dy) and size
(w, h), then 7 keypoints as offsets (dx, dy), all in pixels of the 192x192
input — and one score logit. Offsets are relative to the anchor centre. Palms
above the score threshold are merged by weighted NMS (:mod:`.nms`) and mapped
from the letterboxed input back to the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .anchors import ssd_anchors
from .imaging import Letterbox
from .nms import nms

NUM_PALM_KEYPOINTS = 7
"""0 wrist centre, 1 index finger base, 2 middle finger base, 3 ring finger base,
4 little finger base, 5 thumb base, 6 thumb second joint (approximate names)."""


@dataclass
class PalmDetection:
    """One palm in image pixels.

    Attributes:
        box: (4,) axis-aligned palm box (x0, y0, x1, y1).
        keypoints: (7, 2) palm keypoints (see :data:`NUM_PALM_KEYPOINTS`).
        score: detection probability.
    """

    box: np.ndarray
    keypoints: np.ndarray
    score: float


@dataclass(frozen=True)
class PalmConfig:
    """Decoding settings of the palm detector."""

    score_threshold: float = 0.5
    """Minimum detection probability."""
    nms_threshold: float = 0.3
    """IoU above which palms merge."""
    clip_logit: float = 100.0
    """Score logits are clipped to +-this before the sigmoid."""
    max_palms: int = 4
    """Keep at most this many palms (best first)."""


_ANCHORS = ssd_anchors()


def decode_palms(raw_boxes: np.ndarray, raw_scores: np.ndarray, lb: Letterbox,
                 cfg: PalmConfig | None = None) -> list[PalmDetection]:
    """Palms from one image's network outputs.

    Args:
        raw_boxes: (2016, 18) network output ``boxes`` of one image.
        raw_scores: (2016,) or (2016, 1) score logits.
        lb: how the image was letterboxed into the input.
    Returns:
        palms in image pixels, best first.
    """
    cfg = cfg or PalmConfig()
    logits = np.clip(raw_scores.reshape(-1), -cfg.clip_logit, cfg.clip_logit)
    scores = 1.0 / (1.0 + np.exp(-logits))
    keep = np.flatnonzero(scores >= cfg.score_threshold)
    if keep.size == 0:
        return []
    size = float(lb.size)
    raw = raw_boxes[keep].astype(np.float64)
    anchors = _ANCHORS[keep].astype(np.float64)
    cx = raw[:, 0] / size + anchors[:, 0]
    cy = raw[:, 1] / size + anchors[:, 1]
    w, h = raw[:, 2] / size, raw[:, 3] / size
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kp = raw[:, 4:4 + 2 * NUM_PALM_KEYPOINTS].reshape(-1, NUM_PALM_KEYPOINTS, 2) / size + anchors[:, None, :]
    boxes, sc, kp = nms(boxes, scores[keep], cfg.nms_threshold, weighted=True, extras=kp, max_out=cfg.max_palms)
    out = []
    for b, s, k in zip(boxes, sc, kp):
        corners = lb.to_image(b.reshape(2, 2)).reshape(4)
        out.append(PalmDetection(corners, lb.to_image(k), float(s)))
    return out
