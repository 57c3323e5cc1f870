"""Non-maximum suppression for the palm detector: plain and score-weighted.

The weighted variant (the palm detector's default) does not just keep the best
box of a cluster: every box overlapping the best one by more than the threshold
joins its cluster, and the cluster's box and keypoints are the score-weighted
mean of its members, which steadies the detections from frame to frame. The
cluster keeps the best score.
"""

from __future__ import annotations

import numpy as np


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of ``box`` (4,) with ``boxes`` (N, 4); boxes are (x0, y0, x1, y1)."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float = 0.3, weighted: bool = True,
        extras: np.ndarray | None = None, max_out: int | None = None
        ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Suppress overlapping boxes.

    Args:
        boxes: (N, 4) as (x0, y0, x1, y1).
        scores: (N,).
        threshold: IoU above which a box joins (is suppressed by) a better one.
        weighted: average each cluster's boxes and extras by score instead of keeping the best.
        extras: optional (N, ...) values averaged like the boxes (keypoints).
        max_out: stop after this many results.
    Returns:
        boxes (M, 4), scores (M,), extras (M, ...) or None, best first.
    """
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    extras = extras[order] if extras is not None else None
    alive = np.ones(len(scores), dtype=bool)
    out_b, out_s, out_e = [], [], []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        idx = np.flatnonzero(alive)
        member = idx[iou(boxes[i], boxes[idx]) > threshold]
        member = np.union1d(member, [i])
        alive[member] = False
        if weighted:
            w = scores[member] / scores[member].sum()
            out_b.append((boxes[member] * w[:, None]).sum(0))
            if extras is not None:
                out_e.append(np.tensordot(w, extras[member], axes=1))
        else:
            out_b.append(boxes[i])
            if extras is not None:
                out_e.append(extras[i])
        out_s.append(scores[i])
        if max_out is not None and len(out_s) >= max_out:
            break
    nb = np.array(out_b, dtype=np.float32).reshape(-1, 4)
    ns = np.array(out_s, dtype=np.float32)
    ne = None
    if extras is not None:
        ne = np.array(out_e, dtype=np.float32).reshape((len(out_s), *extras.shape[1:]))
    return nb, ns, ne
