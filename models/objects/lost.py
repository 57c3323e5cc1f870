"""Tracking loss: a score with thresholds, and where to look for the object again.

The tracker's per-frame quality is the colour agreement of the contour at the
final pose (``score``, 0 = the contour separates nothing, 1 = perfectly) and the
fraction of its lines that saw the image (``visible``: not occluded, not outside).
Scores are compared with the track's reference score (its typical good score).
A frame is *bad* when its score is far below the reference or ``visible`` is low;
``patience`` bad frames in a row make the track *lost*. While lost, each frame
tries a local re-start from the last good pose, and every ``search_interval``
frames a global search: the blobs of the foreground probability image under the
(frozen) colour histograms become boxes for the silhouette search. A candidate
is accepted when it scores close to the reference, sees most of its lines, lies
well inside the image, at a distance like the last good pose's and (for a
textured mesh) its rendering correlates with the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import find_objects, gaussian_filter, label


@dataclass(frozen=True)
class LossConfig:
    """Thresholds of loss detection and recovery.

    Scores are judged against the track's own *reference*: a running mean of the
    scores of its good frames (starting from the first frame's). A real video with
    blur, shading and unmodelled occluders scores lower than a rendering (~0.5
    against ~0.9 for a correct pose), so fixed thresholds would not fit both."""

    lost_ratio: float = 0.6
    """A frame scoring below this fraction of the reference is bad ..."""
    lost_floor: float = 0.15
    """... and so is one scoring below this, whatever the reference."""
    min_visible: float = 0.15
    """A frame whose lines saw less than this fraction of the image is bad."""
    patience: int = 2
    """Bad frames in a row before the track is declared lost."""
    update_ratio: float = 0.8
    """The colour histograms learn only from frames scoring at least this fraction of the reference."""
    reference_rate: float = 0.05
    """Learning rate of the reference score."""
    recover_ratio: float = 0.7
    """A re-detected pose must score at least this fraction of the reference ..."""
    recover_floor: float = 0.3
    """... and at least this ..."""
    recover_visible: float = 0.5
    """... and see at least this fraction of its lines ..."""
    recover_inside: float = 0.95
    """... and have this fraction of its contour inside the image (a partly seen object is ambiguous) ..."""
    recover_margin: float = 0.25
    """... away from the border by this fraction of the object's projected size ..."""
    recover_depth_ratio: float = 2.0
    """... at a distance within this factor of the last good pose's ..."""
    recover_texture: float = 0.2
    """... and, for a textured mesh, a rendering correlating at least this much with the image (-1: off)."""
    search_interval: int = 5
    """Frames between global searches while lost (a local re-start is tried every frame)."""
    blob_threshold: float = 0.65
    """Foreground probability above which pixels form re-detection blobs."""
    min_blob_area: int = 150
    """Smallest blob (pixels) considered."""
    max_blobs: int = 3
    """Blobs tried per global search, largest first."""


class LossDetector:
    """Counts bad frames and keeps the reference score; ``update`` says whether the track is (still) good."""

    def __init__(self, config: LossConfig | None = None) -> None:
        self.config = config or LossConfig()
        self.bad = 0
        self.reference = float("nan")

    def is_bad(self, score: float, visible: float) -> bool:
        c = self.config
        return score < max(c.lost_ratio * self.reference, c.lost_floor) or visible < c.min_visible

    def learns(self, score: float) -> bool:
        """Whether a frame is good enough for the colour histograms to learn from."""
        return score >= self.config.update_ratio * self.reference

    def update(self, score: float, visible: float) -> bool:
        """Record a tracked frame; True while the track is not lost."""
        if self.is_bad(score, visible):
            self.bad += 1
        else:
            self.bad = 0
            r = self.config.reference_rate
            self.reference = (1 - r) * self.reference + r * score
        return self.bad < self.config.patience

    def accepts(self, score: float, visible: float, inside: float = 1.0) -> bool:
        """Whether a re-detected pose is good enough to resume tracking."""
        c = self.config
        return (score >= max(c.recover_ratio * self.reference, c.recover_floor) and visible >= c.recover_visible
                and inside >= c.recover_inside)

    def reset(self, score: float | None = None) -> None:
        """Start counting afresh; ``score`` (a new track's first score) sets the reference."""
        self.bad = 0
        if score is not None:
            self.reference = max(float(score), self.config.recover_floor)


def candidate_boxes(prob: np.ndarray, config: LossConfig | None = None,
                    occlusion: np.ndarray | None = None) -> list[tuple[int, int, int, int]]:
    """Boxes ``(x, y, w, h)`` of the largest blobs of a foreground probability image ``(H, W)``."""
    c = config or LossConfig()
    p = gaussian_filter(np.asarray(prob, np.float32), 2.0)
    fg = p > c.blob_threshold
    if occlusion is not None:
        fg &= ~occlusion
    lab, n = label(fg)
    if n == 0:
        return []
    areas = np.bincount(lab.ravel())[1:]
    order = np.argsort(-areas)[: c.max_blobs]
    slices = find_objects(lab)
    out = []
    for k in order:
        if areas[k] < c.min_blob_area:
            break
        sy, sx = slices[k]
        out.append((int(sx.start), int(sy.start), int(sx.stop - sx.start), int(sy.stop - sy.start)))
    return out
