"""Camera intrinsics: from the user (flag or file) or a default field of view."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .errors import ConfigError


def intrinsics_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """``K`` (3, 3) float64."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def default_K(width: int, height: int, fov_deg: float) -> np.ndarray:
    """Intrinsics for a horizontal field of view, principal point at the image centre.

    Pixel centres are at integer coordinates (OpenCV's convention, used by the
    rasterizer and the stored 2D keypoints), so the centre is ``((W-1)/2, (H-1)/2)``.
    """
    f = 0.5 * width / math.tan(math.radians(fov_deg) / 2)
    return intrinsics_matrix(f, f, (width - 1) / 2, (height - 1) / 2)


def parse_intrinsics(text: str) -> tuple[float, float, float, float]:
    """``"fx,fy,cx,cy"`` or a file (JSON with fx/fy/cx/cy or K; .txt/.npy with a 3x3 matrix)."""
    p = Path(text)
    if p.suffix.lower() in (".json", ".txt", ".npy", ".npz") or p.exists():
        return _from_file(p)
    parts = text.replace(" ", "").split(",")
    try:
        values = tuple(float(v) for v in parts)
    except ValueError:
        raise ConfigError(f"--intrinsics {text}", "expected fx,fy,cx,cy or a file", "e.g. 600,600,320,240") from None
    if len(values) != 4 or values[0] <= 0 or values[1] <= 0:
        raise ConfigError(f"--intrinsics {text}", "expected four numbers fx,fy,cx,cy with fx, fy > 0")
    return values  # type: ignore[return-value]


def _from_file(p: Path) -> tuple[float, float, float, float]:
    if not p.is_file():
        raise ConfigError(str(p), "intrinsics file not found", "check the --intrinsics path")
    try:
        if p.suffix.lower() == ".json":
            d = json.loads(p.read_text())
            K = np.asarray(d["K"], float).reshape(3, 3) if "K" in d else intrinsics_matrix(
                d["fx"], d["fy"], d["cx"], d["cy"])
        elif p.suffix.lower() in (".npy", ".npz"):
            data = np.load(p)
            K = np.asarray(data["K"] if p.suffix.lower() == ".npz" else data, float).reshape(3, 3)
        else:
            K = np.loadtxt(p, dtype=float).reshape(3, 3)
    except (KeyError, ValueError, OSError, json.JSONDecodeError) as e:
        raise ConfigError(str(p), f"cannot read intrinsics: {e}",
                          "give JSON {fx, fy, cx, cy} or {K}, or a 3x3 matrix") from None
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ConfigError(str(p), "intrinsics need fx, fy > 0")
    return float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])
