"""Cameras of the synthetic scenes: intrinsics, a static tripod, a moving head-mounted camera.

Poses are ``T_table_cam`` (4, 4) in the table frame (z up); the camera is OpenCV
(x right, y down, z forward). Pixel centres are at integer coordinates (the
kernels' rasterizer rule), with the principal point at the image centre.
"""

from __future__ import annotations

import math

import numpy as np

from .motion import make_T

UP = np.array([0.0, 0.0, 1.0])


def intrinsics(size: tuple[int, int], fov_deg: float) -> np.ndarray:
    """(3, 3) K of a ``size`` (W, H) image with a horizontal field of view ``fov_deg``."""
    w, h = size
    f = 0.5 * w / math.tan(math.radians(fov_deg) / 2)
    return np.array([[f, 0.0, (w - 1) / 2], [0.0, f, (h - 1) / 2], [0.0, 0.0, 1.0]])


def look_at(eye: np.ndarray, target: np.ndarray, roll: float = 0.0) -> np.ndarray:
    """(4, 4) ``T_table_cam`` of a camera at ``eye`` looking at ``target``, image up along +z, rolled by ``roll`` rad."""
    z = target - eye
    z = z / np.linalg.norm(z)
    x = np.cross(z, UP)
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    if roll:
        c, s = math.cos(roll), math.sin(roll)
        x, y = c * x + s * y, -s * x + c * y
    return make_T(np.stack([x, y, z], axis=1), eye)


def static_camera(rng: np.random.Generator, centre: np.ndarray, azimuth_deg: tuple[float, float],
                  elevation_deg: tuple[float, float] = (35.0, 50.0), distance: tuple[float, float] = (0.45, 0.62)
                  ) -> np.ndarray:
    """(4, 4) a tripod camera looking at ``centre`` from a random direction.

    Azimuth is measured in the table plane from -y (the person's side) towards +x.
    """
    az = math.radians(rng.uniform(*azimuth_deg))
    el = math.radians(rng.uniform(*elevation_deg))
    d = rng.uniform(*distance)
    eye = centre + d * np.array([math.cos(el) * math.sin(az), -math.cos(el) * math.cos(az), math.sin(el)])
    target = centre + rng.normal(0.0, 0.015, 3)
    return look_at(eye, target, roll=rng.normal(0.0, 0.02))


def ego_camera(rng: np.random.Generator, times: np.ndarray, focus: np.ndarray) -> np.ndarray:
    """(T, 4, 4) a head-mounted camera: a head behind the workspace looking down at a smoothed ``focus`` (T, 3),
    with the slow sway and nodding of a real head (sums of sinusoids, seeded)."""
    head = np.array([rng.uniform(-0.05, 0.05), rng.uniform(-0.34, -0.26), rng.uniform(0.36, 0.44)])
    dt = float(times[1] - times[0]) if len(times) > 1 else 1 / 30
    smooth = _smooth(focus, max(1, int(round(0.4 / dt))))
    out = np.zeros((len(times), 4, 4))
    freqs = rng.uniform(0.15, 0.6, (3, 2))
    phases = rng.uniform(0, 2 * np.pi, (3, 2))
    amps = np.array([0.015, 0.012, 0.010])
    lean = 0.25 * (smooth - smooth[0])  # the head follows the action a little
    lean[:, 2] = 0.0
    for i, t in enumerate(times):
        sway = amps * np.sin(2 * np.pi * freqs[:, 0] * t + phases[:, 0])
        eye = head + sway + lean[i]
        nod = np.array([0.02, 0.02, 0.0]) * np.sin(2 * np.pi * freqs[:2, 1].mean() * t + phases[0, 1])
        out[i] = look_at(eye, smooth[i] + nod, roll=0.03 * np.sin(2 * np.pi * freqs[2, 1] * t + phases[2, 1]))
    return out


def _smooth(x: np.ndarray, k: int) -> np.ndarray:
    """(T, D) centred moving average over 2k + 1 samples, edges held."""
    pad = np.concatenate([np.repeat(x[:1], k, 0), x, np.repeat(x[-1:], k, 0)])
    c = np.cumsum(np.concatenate([np.zeros((1, x.shape[1])), pad]), axis=0)
    return (c[2 * k + 1:] - c[:-2 * k - 1]) / (2 * k + 1)
