"""Procedural textures and colours of the synthetic scenes, all drawn from a numpy ``Generator``.

Tiling textures (wood, wall) are built from periodic noise (white noise low-passed
in the Fourier domain), so they repeat without seams. Object textures are an atlas
(see ``shapes``): a printed label round the side in the upper half, the top and
the bottom in the lower tiles, with enough structure (glyph rows, stripes, a logo)
for a tracker to lock on.
"""

from __future__ import annotations

import numpy as np

SKIN_TONES = np.array([[233, 190, 160], [224, 172, 140], [198, 142, 110], [160, 110, 80], [120, 80, 58],
                       [90, 60, 45]], np.float64)
"""RGB skin base tones, light to dark."""


def periodic_noise(rng: np.random.Generator, size: tuple[int, int], scale: tuple[float, float]) -> np.ndarray:
    """(H, W) float noise in about [-1, 1], periodic in both axes, with correlation lengths ``scale`` (pixels, y, x)."""
    h, w = size
    white = rng.standard_normal((h, w))
    fy = np.fft.fftfreq(h)[:, None] * scale[0]
    fx = np.fft.fftfreq(w)[None, :] * scale[1]
    out = np.real(np.fft.ifft2(np.fft.fft2(white) * np.exp(-2.0 * (fx ** 2 + fy ** 2) * np.pi ** 2)))
    return out / (3.0 * out.std() + 1e-12)


def _to_u8(img: np.ndarray) -> np.ndarray:
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def wood_texture(rng: np.random.Generator, size: int = 512) -> np.ndarray:
    """(size, size, 3) uint8 tiling wood grain (grain along the texture's u axis)."""
    y, x = np.mgrid[0:size, 0:size] / size
    warp = periodic_noise(rng, (size, size), (24.0, 90.0))
    rings = int(rng.integers(18, 30))
    grain = 0.5 + 0.5 * np.sin(2 * np.pi * (rings * y + 1.2 * warp + 0.5 * np.sin(2 * np.pi * x)))
    streaks = periodic_noise(rng, (size, size), (1.2, 40.0))
    light = np.array([196, 150, 100]) * rng.uniform(0.8, 1.1)
    dark = light * rng.uniform(0.6, 0.75)
    t = np.clip(grain ** 4 + 0.35 * streaks, 0, 1)[..., None]
    return _to_u8(light * (1 - t) + dark * t)


def wall_texture(rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """(size, size, 3) uint8 tiling plaster: a light colour with soft blotches and fine grain."""
    base = rng.uniform(170, 235, 3)
    soft = periodic_noise(rng, (size, size), (20.0, 20.0))
    fine = periodic_noise(rng, (size, size), (1.0, 1.0))
    return _to_u8(base * (1 + 0.06 * soft[..., None] + 0.03 * fine[..., None]))


def _glyph_rows(rng: np.random.Generator, img: np.ndarray, y0: int, y1: int, colour: np.ndarray) -> None:
    """Draw rows of small blocks (text-like) between rows y0 and y1 of img (in place)."""
    w = img.shape[1]
    y = y0 + 4
    while y + 8 < y1:
        hgt = int(rng.integers(5, 11))
        x = int(rng.integers(4, 20))
        while x < w - 12:
            gw = int(rng.integers(3, 9))
            if rng.random() < 0.85:
                img[y:y + hgt, x:x + gw] = colour
            x += gw + int(rng.integers(2, 5)) + (int(rng.integers(6, 14)) if rng.random() < 0.15 else 0)
        y += hgt + int(rng.integers(5, 10))


def object_texture(rng: np.random.Generator, size: int = 512) -> np.ndarray:
    """(size, size, 3) uint8 atlas: side label (upper half), top (lower left), bottom (lower right)."""
    base = rng.uniform(40, 230, 3)
    accent = 255.0 - base * rng.uniform(0.3, 0.9)
    ink = rng.uniform(0, 60, 3) if base.mean() > 120 else rng.uniform(200, 255, 3)
    img = np.empty((size, size, 3))
    img[:] = base
    h2 = size // 2
    # side: stripes top and bottom, a label band with glyph rows and a logo disc
    band0, band1 = int(h2 * rng.uniform(0.2, 0.35)), int(h2 * rng.uniform(0.65, 0.8))
    img[:band0 // 3] = accent
    img[h2 - h2 // 10:h2] = accent
    img[band0:band1] = accent * 0.5 + 255 * 0.5
    _glyph_rows(rng, img, band0, band1, ink)
    yy, xx = np.mgrid[0:h2, 0:size]
    for _ in range(2):
        cx, cy, r = rng.uniform(0.1, 0.9) * size, rng.uniform(0.3, 0.7) * h2, rng.uniform(0.05, 0.1) * size
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
        img[:h2][disc] = rng.uniform(0, 255, 3)
    # top and bottom tiles: the base colour with rings, so rotation about the axis is visible
    yy, xx = np.mgrid[0:h2, 0:h2] - h2 / 2
    rad = np.hypot(xx, yy) / (h2 / 2)
    ang = np.arctan2(yy, xx)
    top = base * (0.8 + 0.2 * (np.sin(12 * rad * np.pi) > 0))[..., None]
    top[(np.abs(ang) < 0.25) & (rad < 0.9)] = ink
    img[h2:, :h2] = top
    img[h2:, h2:] = base * 0.7
    grain = periodic_noise(rng, (size, size), (1.0, 1.0))[..., None]
    return _to_u8(img * (1 + 0.04 * grain))


def skin_colors(rng: np.random.Generator, normals: np.ndarray, palmar: np.ndarray, nails: np.ndarray,
                tone: float | None = None) -> np.ndarray:
    """(V, 3) uint8 vertex colours of a hand.

    Args:
        normals: (V, 3) rest vertex normals; palmar: (3,) the palm's outward direction
            in the same axes; nails: (V,) bool nail vertices.
        tone: 0 (light) .. 1 (dark) skin tone; None draws one.
    """
    t = rng.uniform(0.0, 1.0) if tone is None else float(tone)
    k = t * (len(SKIN_TONES) - 1)
    i = min(int(k), len(SKIN_TONES) - 2)
    base = SKIN_TONES[i] * (1 - (k - i)) + SKIN_TONES[i + 1] * (k - i)
    palm_side = np.clip(normals @ palmar, 0, 1)[:, None]
    col = base * (1 - 0.12 * palm_side) + np.array([255, 200, 180]) * 0.12 * palm_side
    col = col * (1 + 0.04 * rng.standard_normal((len(normals), 1)))
    col[nails] = 0.55 * col[nails] + 0.45 * np.array([250, 215, 210])
    return _to_u8(col)
