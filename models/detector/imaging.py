"""Image preparation for the two networks: a letterboxed full frame and rotated hand crops.

Coordinates are continuous pixels: pixel ``(i, j)`` covers ``[j, j+1) x [i, i+1)``,
so its centre is ``(j + 0.5, i + 0.5)``; normalised coordinates times the width
or height give the same thing. Network inputs are RGB float32 in [0, 1].

Both inputs are one operation: sample a rotated square of the image onto an
``S x S`` grid (bilinear, black outside the image). When the square is much
larger than the grid (a full frame into 192 pixels), the covered region is first
box-filtered by an integer factor, so the result is antialiased. The cores are
single-threaded numba functions (``_``-prefixed); they do not compete with the
networks' thread pools.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from inscene.engine.errors import InputError


def check_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """``image`` as a contiguous ``(H, W, 3)`` uint8 array, or :class:`InputError` naming ``name``."""
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3 or a.shape[0] < 2 or a.shape[1] < 2:
        raise InputError(name, f"expected an RGB image (H, W, 3), got shape {a.shape}", "pass an RGB uint8 array")
    if a.dtype != np.uint8:
        raise InputError(name, f"expected uint8 pixels, got {a.dtype}", "convert to uint8 RGB")
    return np.ascontiguousarray(a)


@numba.njit(cache=True, nogil=True)
def _box_filter(src: np.ndarray, y0: int, y1: int, x0: int, x1: int, f: int) -> np.ndarray:
    """Mean of ``f x f`` blocks of ``src[y0:y1, x0:x1]`` -> (ceil(h/f), ceil(w/f), 3) float32."""
    h, w = y1 - y0, x1 - x0
    oh, ow = (h + f - 1) // f, (w + f - 1) // f
    out = np.zeros((oh, ow, 3), np.float32)
    cnt = np.zeros((oh, ow), np.float32)
    for i in range(h):
        oi = i // f
        for j in range(w):
            oj = j // f
            for c in range(3):
                out[oi, oj, c] += src[y0 + i, x0 + j, c]
            cnt[oi, oj] += 1.0
    for i in range(oh):
        for j in range(ow):
            for c in range(3):
                out[i, j, c] /= cnt[i, j]
    return out


@numba.njit(cache=True, nogil=True)
def _sample(src: np.ndarray, out: np.ndarray, ox: float, oy: float, ux: float, uy: float, vx: float, vy: float,
            scale: float) -> None:
    """out[v, u] = bilinear src at (ox + u ux + v vx, oy + u uy + v vy) (continuous px), times ``scale``; 0 outside."""
    h, w = src.shape[0], src.shape[1]
    n = out.shape[0]
    for v in range(n):
        for u in range(n):
            x = ox + (u + 0.5) * ux + (v + 0.5) * vx - 0.5
            y = oy + (u + 0.5) * uy + (v + 0.5) * vy - 0.5
            xf = math.floor(x)
            yf = math.floor(y)
            ax = x - xf
            ay = y - yf
            xi = int(xf)
            yi = int(yf)
            for c in range(3):
                acc = 0.0
                for dy in range(2):
                    yy = yi + dy
                    if yy < 0 or yy >= h:
                        continue
                    wy = ay if dy == 1 else 1.0 - ay
                    for dx in range(2):
                        xx = xi + dx
                        if xx < 0 or xx >= w:
                            continue
                        wx = ax if dx == 1 else 1.0 - ax
                        acc += wx * wy * src[yy, xx, c]
                out[v, u, c] = acc * scale


def rect_corners(cx: float, cy: float, side: float, angle: float) -> np.ndarray:
    """The 4 corners ``(4, 2)`` of a square of ``side`` centred at (cx, cy) rotated by ``angle``."""
    c, s = math.cos(angle), math.sin(angle)
    local = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]) * side
    return np.stack([cx + local[:, 0] * c - local[:, 1] * s, cy + local[:, 0] * s + local[:, 1] * c], axis=1)


def crop_rotated(image: np.ndarray, cx: float, cy: float, side: float, angle: float, size: int) -> np.ndarray:
    """Sample a rotated square of ``image`` (H, W, 3) uint8 into a ``(size, size, 3)`` float32 [0, 1] crop.

    The square has centre (cx, cy), side ``side`` (pixels) and rotation ``angle``
    (radians): crop pixel (u, v) shows image point
    ``centre + R(angle) @ (((u + 0.5) / size - 0.5) * side, ((v + 0.5) / size - 0.5) * side)``.
    Bilinear, black outside the image; squares more than twice the crop size are
    box-filtered by ``floor(side / size / 1.5) + 1`` first.
    """
    h, w = image.shape[:2]
    out = np.zeros((size, size, 3), np.float32)
    if side <= 0:
        return out
    c, s = math.cos(angle), math.sin(angle)
    step = side / size
    ox = cx - 0.5 * side * (c - s)
    oy = cy - 0.5 * side * (s + c)
    f = int(side / size / 1.5) + 1 if side > 2 * size else 1
    if f == 1:
        _sample(image, out, ox, oy, step * c, step * s, -step * s, step * c, 1.0 / 255.0)
        return out
    corners = rect_corners(cx, cy, side, angle)
    x0 = int(np.clip(np.floor(corners[:, 0].min()) - f, 0, w))
    x1 = int(np.clip(np.ceil(corners[:, 0].max()) + f, 0, w))
    y0 = int(np.clip(np.floor(corners[:, 1].min()) - f, 0, h))
    y1 = int(np.clip(np.ceil(corners[:, 1].max()) + f, 0, h))
    if x1 - x0 < 1 or y1 - y0 < 1:
        return out
    pooled = _box_filter(image, y0, y1, x0, x1, f)
    _sample(pooled, out, (ox - x0) / f, (oy - y0) / f, step * c / f, step * s / f, -step * s / f, step * c / f,
            1.0 / 255.0)
    return out


@dataclass(frozen=True)
class Letterbox:
    """How a frame was fitted into the square network input (aspect kept, centred, black border).

    Attributes:
        size: network input side, pixels.
        scale: input pixels per image pixel.
        pad_x: left border, input pixels.
        pad_y: top border, input pixels.
    """

    size: int
    scale: float
    pad_x: float
    pad_y: float

    def to_image(self, xy: np.ndarray) -> np.ndarray:
        """``(..., 2)`` normalised input coordinates ([0, 1] of the input) -> image pixels."""
        out = np.empty(np.shape(xy), dtype=np.float32)
        out[..., 0] = (xy[..., 0] * self.size - self.pad_x) / self.scale
        out[..., 1] = (xy[..., 1] * self.size - self.pad_y) / self.scale
        return out


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """Fit ``image`` (H, W, 3) uint8 into a ``(size, size, 3)`` float32 [0, 1] input, centred, black border.

    It is the square of side ``max(H, W)`` around the image centre, sampled with
    :func:`crop_rotated` (so antialiased).
    """
    h, w = image.shape[:2]
    side = float(max(h, w))
    scale = size / side
    out = crop_rotated(image, w / 2, h / 2, side, 0.0, size)
    return out, Letterbox(size, scale, (side - w) / 2 * scale, (side - h) / 2 * scale)
