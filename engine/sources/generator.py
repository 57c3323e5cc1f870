"""In-process synthetic frames: for tests, benchmarks and live-source simulation.

URI form (all parameters optional)::

    gen:?frames=300&size=640x480&fps=30&live=0&pace=0&seed=0

==========  =========  =======================================================
parameter   default    meaning
==========  =========  =======================================================
``frames``  300        number of source frames; 0 means endless (until close)
``size``    640x480    frame size, ``WIDTHxHEIGHT`` in pixels
``fps``     30         frame rate; frame k is at time k / fps seconds (when the
                       URI has no ``fps``, ``SourceConfig.fps`` is used if set)
``pace``    0          1: emit frames in real time at ``fps`` (a fake camera)
``live``    = pace     1: report ``info.live`` (the engine may drop frames);
                       ``SourceConfig.live`` overrides it
``seed``    0          picks the colours and the disc's path
==========  =========  =======================================================

The default picture (:class:`MovingDisc`) is a colour gradient with a disc
moving on a Lissajous path, plus the frame index written as a row of black and
white 4x4 blocks along the top-left edge (:func:`read_index` reads it back;
frames at least 96 px wide), so a test can tell exactly which frame it got.
It costs well under a millisecond at 640x480.
"""

from __future__ import annotations

import itertools
import time
import threading
from collections.abc import Callable, Iterator
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from ..config import SourceConfig
from ..errors import SourceError
from ..frame import Frame
from ._common import count_selected
from .base import Source, SourceInfo

INDEX_BITS = 24
"""Bits of the frame index drawn into the default picture."""
INDEX_BLOCK = 4
"""Side, in pixels, of one index bit's block."""


class MovingDisc:
    """Deterministic default picture: ``MovingDisc(size, seed)(k)`` -> ``(H, W, 3)`` uint8."""

    def __init__(self, size: tuple[int, int] = (640, 480), seed: int = 0) -> None:
        width, height = size
        rng = np.random.default_rng(seed)
        c0, c1, c2 = (rng.integers(30, 226, 3) for _ in range(3))
        u = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :, None]
        v = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
        bg = c0 * (1 - u) * (1 - v) + c1 * u * (1 - v) + c2 * v
        self.background = np.clip(bg, 0, 255).astype(np.uint8)
        self.size = (width, height)
        self.radius = max(2, min(width, height) // 8)
        r = self.radius
        yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
        self._mask = xx * xx + yy * yy <= r * r
        self.colour = np.array(rng.integers(0, 256, 3), dtype=np.uint8)
        self._freq = rng.uniform(0.01, 0.03, 2) * 2 * np.pi
        self._phase = rng.uniform(0, 2 * np.pi, 2)

    def centre(self, index: int) -> tuple[int, int]:
        """Disc centre ``(x, y)`` in pixels at frame ``index``."""
        w, h = self.size
        r = self.radius
        s = np.sin(self._freq * index + self._phase)
        return int(r + (w - 1 - 2 * r) * (s[0] + 1) / 2), int(r + (h - 1 - 2 * r) * (s[1] + 1) / 2)

    def __call__(self, index: int) -> np.ndarray:
        img = self.background.copy()
        h, w = img.shape[:2]
        x, y = self.centre(index)
        r = self.radius
        x0, x1, y0, y1 = max(x - r, 0), min(x + r + 1, w), max(y - r, 0), min(y + r + 1, h)
        mask = self._mask[y0 - (y - r) : y1 - (y - r), x0 - (x - r) : x1 - (x - r)]
        img[y0:y1, x0:x1][mask] = self.colour
        b = INDEX_BLOCK
        if w >= INDEX_BITS * b and h >= b:
            for bit in range(INDEX_BITS):
                img[:b, bit * b : (bit + 1) * b] = 255 if (index >> bit) & 1 else 0
        return img


def read_index(image: np.ndarray) -> int:
    """The frame index drawn by :class:`MovingDisc` into ``image`` ``(H, W, 3)``."""
    b = INDEX_BLOCK
    row = image[: b, : INDEX_BITS * b].reshape(b, INDEX_BITS, b, -1).mean(axis=(0, 2, 3))
    return int(sum(1 << i for i, v in enumerate(row) if v > 127))


class GeneratorSource(Source):
    """Frames made by ``render(index)`` (default :class:`MovingDisc`).

    Args:
        render: ``index -> (H, W, 3) uint8`` image; must be deterministic.
        n_frames: number of source frames; None or 0 means endless (until ``close()``).
        fps: frame rate; frame ``k`` has time ``k / fps``.
        size: ``(width, height)``; None takes it from ``render`` (640x480 by default).
        live: report a live source; None means the same as ``pace``.
        pace: emit in real time, frame ``k`` at ``(k - start) / fps`` s after the first.
        seed: seed of the default picture.
        cfg: start / end / stride selection, and ``live`` override.
        uri: what ``info.uri`` reports.
    """

    kind = "generator"

    def __init__(self, render: Callable[[int], np.ndarray] | None = None, n_frames: int | None = 300,
                 fps: float = 30.0, size: tuple[int, int] | None = None, live: bool | None = None,
                 pace: bool = False, *, seed: int = 0, cfg: SourceConfig | None = None,
                 uri: str = "gen:") -> None:
        if fps <= 0:
            raise SourceError(uri, f"fps must be > 0, got {fps}")
        if n_frames is not None and n_frames < 0:
            raise SourceError(uri, f"frames must be >= 0, got {n_frames}")
        if size is not None and (len(size) != 2 or min(size) <= 0):
            raise SourceError(uri, f"size must be (width, height) > 0, got {size}")
        self.uri = uri
        self.cfg = cfg or SourceConfig()
        self.n_frames = n_frames or None
        self.fps = float(fps)
        self.pace = pace
        self.live = pace if live is None else live
        self._size = size
        self._render = render if render is not None else MovingDisc(size or (640, 480), seed)
        self._first: tuple[int, np.ndarray] | None = None
        self._stop = threading.Event()

    @classmethod
    def from_uri(cls, uri: str, cfg: SourceConfig | None = None) -> GeneratorSource:
        """Build from a ``gen:?...`` URI (see the module docstring); SourceError if malformed."""
        params = _parse_uri(uri)
        cfg = cfg or SourceConfig()
        fps = params.get("fps", cfg.fps or 30.0)
        pace = bool(params.get("pace", 0))
        live = bool(params["live"]) if "live" in params else None
        return cls(n_frames=int(params.get("frames", 300)), fps=float(fps),
                   size=params.get("size", (640, 480)), live=live, pace=pace,
                   seed=int(params.get("seed", 0)), cfg=cfg, uri=uri)

    def _stop_index(self) -> int | None:
        ends = [v for v in (self.n_frames, self.cfg.end) if v is not None]
        return min(ends) if ends else None

    def _checked(self, index: int, image: np.ndarray) -> np.ndarray:
        w, h = self.info.width, self.info.height
        if not isinstance(image, np.ndarray) or image.shape != (h, w, 3) or image.dtype != np.uint8:
            got = f"{getattr(image, 'shape', None)} {getattr(image, 'dtype', type(image).__name__)}"
            raise SourceError(self.uri, f"render({index}) returned {got}, expected ({h}, {w}, 3) uint8",
                              "fix the render function")
        return image

    def open(self) -> SourceInfo:
        """Render the first selected frame once to learn and check the frame size."""
        first = self.cfg.start
        image = np.asarray(self._render(first))
        if image.ndim != 3 or image.shape[2] != 3:
            raise SourceError(self.uri, f"render({first}) returned shape {image.shape}, expected (H, W, 3)",
                              "fix the render function")
        height, width = image.shape[:2]
        if self._size is not None and tuple(self._size) != (width, height):
            raise SourceError(self.uri, f"render({first}) returned {width}x{height}, expected "
                              f"{self._size[0]}x{self._size[1]}", "fix the render function or size")
        live = self.live if self.cfg.live is None else self.cfg.live
        self.info = SourceInfo(uri=self.uri, kind=self.kind, live=bool(live), fps=self.fps,
                               width=width, height=height,
                               n_frames=count_selected(self._stop_index(), self.cfg))
        self._first = (first, self._checked(first, image))
        return self.info

    def frames(self) -> Iterator[Frame]:
        """Selected frames; paced in real time when ``pace`` is set; ends on ``close()``."""
        if not hasattr(self, "info"):
            raise RuntimeError("GeneratorSource.frames() called before open()")
        cfg = self.cfg
        stop = self._stop_index()
        indices = itertools.count(cfg.start, cfg.stride) if stop is None else range(cfg.start, stop, cfg.stride)
        t_first = time.monotonic()
        for k in indices:
            if self._stop.is_set():
                return
            if self.pace:
                wait = t_first + (k - cfg.start) / self.fps - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    return
            if self._first is not None and self._first[0] == k:
                image, self._first = self._first[1], None
            else:
                image = self._checked(k, np.asarray(self._render(k)))
            yield Frame(index=k, time=k / self.fps, image=image, arrival=time.monotonic())

    def close(self) -> None:
        """End ``frames()`` (a paced wait returns at once); safe from any thread."""
        self._stop.set()


_PARAMS = ("frames", "size", "fps", "live", "pace", "seed")


def _parse_uri(uri: str) -> dict[str, object]:
    """``gen:?k=v&...`` -> typed parameters; SourceError naming the URI if malformed."""
    parts = urlsplit(uri)
    if parts.scheme != "gen" or parts.path.strip("/") or parts.netloc:
        raise SourceError(uri, "malformed generator URI", "use gen:?frames=300&size=640x480&fps=30")
    out: dict[str, object] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        try:
            if key == "size":
                w, h = value.lower().split("x")
                out[key] = (int(w), int(h))
                if min(out[key]) <= 0:  # type: ignore[call-overload]
                    raise ValueError
            elif key == "fps":
                out[key] = float(value)
                if not out[key] > 0:  # type: ignore[operator]
                    raise ValueError
            elif key in ("frames", "seed"):
                out[key] = int(value)
                if out[key] < 0:  # type: ignore[operator]
                    raise ValueError
            elif key in ("live", "pace"):
                if value not in ("0", "1", "true", "false"):
                    raise ValueError
                out[key] = value in ("1", "true")
            else:
                raise SourceError(uri, f"unknown generator parameter '{key}'",
                                  f"valid parameters: {', '.join(_PARAMS)}")
        except ValueError:
            raise SourceError(uri, f"bad value {value!r} for generator parameter '{key}'",
                              "e.g. frames=300 size=640x480 fps=30 live=0 pace=0 seed=0") from None
    return out
