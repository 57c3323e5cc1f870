"""Small generated video clips for benchmarks, the demo and tests (H.264 through PyAV)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np


def textured_frames(n: int, size: tuple[int, int], seed: int = 0):
    """``n`` frames ``(H, W, 3)`` uint8: a coarse random texture scrolling sideways,
    with a bright square that moves, so an encoder and a decoder do real work."""
    w, h = size
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)[:h, :w]
    for i in range(n):
        img = np.roll(base, 4 * i, axis=1)
        x = int((w - h // 4) * (0.5 + 0.45 * np.sin(i / 20)))
        img[h // 3:h // 3 + h // 4, x:x + h // 4] = 255
        yield img


def write_clip(path: str | Path, n: int = 240, size: tuple[int, int] = (1280, 720), fps: int = 30,
               seed: int = 0, codec: str = "libx264") -> Path:
    """Encode ``n`` textured frames to ``path``; pts are frame numbers at ``fps``."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
        s.time_base = Fraction(1, fps)
        for i, img in enumerate(textured_frames(n, size, seed)):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = i
            for pkt in s.encode(f):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path
