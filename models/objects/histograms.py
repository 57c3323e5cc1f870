"""Foreground / background colour histograms of a tracked object, updated online.

RGB colours are binned ``B`` per channel (``B^3`` bins, 16 by default). The
foreground histogram collects pixels just inside the object's projected contour,
the background one pixels just outside it (along the correspondence lines), both
normalized to probabilities and blended into the running estimate with a learning
rate: ``h <- (1 - a) h + a h_new``. With equal priors the pixel posterior is
``P(f | y) = h_f(y) / (h_f(y) + h_b(y))``.
"""

from __future__ import annotations

import numpy as np

from inscene.kernels.regions import Lines, accumulate_histograms

_EPS = 1e-6


class ColorHistograms:
    """Two normalized colour histograms ``(B^3,)`` float64 and the posterior lookup table."""

    def __init__(self, bins: int = 16) -> None:
        if bins not in (2, 4, 8, 16, 32, 64):
            raise ValueError(f"histogram bins per channel must be a power of two in 2..64, got {bins}")
        self.bins = bins
        self.f = np.full(bins ** 3, 1.0 / bins ** 3)
        self.b = np.full(bins ** 3, 1.0 / bins ** 3)
        self.initialized = False
        self._lut: np.ndarray | None = None

    def copy(self) -> ColorHistograms:
        h = ColorHistograms(self.bins)
        h.f, h.b, h.initialized = self.f.copy(), self.b.copy(), self.initialized
        return h

    def lut(self) -> np.ndarray:
        """``(B^3,)`` float32 foreground posterior per colour bin."""
        if self._lut is None:
            self._lut = ((self.f + _EPS) / (self.f + self.b + 2 * _EPS)).astype(np.float32)
        return self._lut

    def _blend(self, new_f: np.ndarray, new_b: np.ndarray, rate_f: float, rate_b: float) -> bool:
        sf, sb = new_f.sum(), new_b.sum()
        if sf < 1 or sb < 1:
            return False
        if not self.initialized:
            self.f, self.b = new_f / sf, new_b / sb
            self.initialized = True
        else:
            self.f = (1 - rate_f) * self.f + rate_f * new_f / sf
            self.b = (1 - rate_b) * self.b + rate_b * new_b / sb
        self._lut = None
        return True

    def update_from_lines(self, image: np.ndarray, lines: Lines, fg_len: np.ndarray, bg_len: np.ndarray,
                          valid: np.ndarray, occlusion: np.ndarray | None = None, rate_f: float = 0.2,
                          rate_b: float = 0.2) -> bool:
        """Blend in the colours along ``lines`` (``fg_len`` / ``bg_len`` pixels inward / outward, ``(L,)``)."""
        nf, nb = np.zeros_like(self.f), np.zeros_like(self.b)
        accumulate_histograms(image, lines, fg_len, bg_len, valid, nf, nb, occlusion=occlusion)
        return self._blend(nf, nb, rate_f, rate_b)

    def update_from_masks(self, image: np.ndarray, fg: np.ndarray, bg: np.ndarray, rate_f: float = 1.0,
                          rate_b: float = 1.0) -> bool:
        """Blend in the colours of the pixels of the ``(H, W)`` bool masks ``fg`` and ``bg``."""
        q = 8 - int(np.log2(self.bins))
        idx = ((image[..., 0] >> q).astype(np.int64) << (2 * (8 - q))) | \
              ((image[..., 1] >> q).astype(np.int64) << (8 - q)) | (image[..., 2] >> q).astype(np.int64)
        nf = np.bincount(idx[fg], minlength=self.bins ** 3).astype(np.float64)
        nb = np.bincount(idx[bg], minlength=self.bins ** 3).astype(np.float64)
        return self._blend(nf, nb, rate_f, rate_b)

    def probability_image(self, image: np.ndarray) -> np.ndarray:
        """``(H, W)`` float32 foreground posterior of every pixel."""
        q = 8 - int(np.log2(self.bins))
        idx = ((image[..., 0] >> q).astype(np.int64) << (2 * (8 - q))) | \
              ((image[..., 1] >> q).astype(np.int64) << (8 - q)) | (image[..., 2] >> q).astype(np.int64)
        return self.lut()[idx]
