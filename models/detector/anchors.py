"""SSD anchors of the palm detector.

The 192x192 palm network predicts, for every cell of its 24x24 (stride 8) and
12x12 (stride 16) feature maps, a fixed number of boxes relative to the cell
centre. Layers that share a stride are merged into one grid whose anchors per
cell add up (two per layer here: one per aspect ratio and one interpolated
scale), which gives 24*24*2 + 12*12*6 = 2016 anchors, row-major within each
grid, the stride-8 grid first. With fixed-size anchors only the centres matter:
the network's offsets are in input pixels, decoded by :mod:`.palm`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AnchorConfig:
    """Anchor layout of an SSD head (the defaults are the palm detector's)."""

    input_size: int = 192
    """Square input side, pixels."""
    strides: tuple[int, ...] = (8, 16, 16, 16)
    """Stride of each detection layer; consecutive equal strides share a grid."""
    anchors_per_layer: int = 2
    """Anchors each layer places per cell."""
    offset: float = 0.5
    """Anchor centre within its cell (0.5: the cell centre)."""


def ssd_anchors(cfg: AnchorConfig | None = None) -> np.ndarray:
    """Anchor centres ``(A, 2)`` float32 as (x, y) in [0, 1] of the input (A = 2016 for the defaults)."""
    cfg = cfg or AnchorConfig()
    out: list[np.ndarray] = []
    i = 0
    while i < len(cfg.strides):
        stride = cfg.strides[i]
        j = i
        while j < len(cfg.strides) and cfg.strides[j] == stride:
            j += 1
        per_cell = cfg.anchors_per_layer * (j - i)
        n = -(-cfg.input_size // stride)
        coords = (np.arange(n, dtype=np.float64) + cfg.offset) / n
        yy, xx = np.meshgrid(coords, coords, indexing="ij")
        centres = np.stack([xx.ravel(), yy.ravel()], axis=1)  # row-major cells
        out.append(np.repeat(centres, per_cell, axis=0))
        i = j
    return np.concatenate(out).astype(np.float32)
