"""Typed access to a result store, safe while the store is still being written.

A reader trusts rows below the ``finalized_frames`` watermark only: it reads the
watermark first (fresh from disk), then at most that many rows of each array. It
never uses consolidated metadata nor an array's current shape to decide what is
data, since both run ahead of the data while a store grows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from ..errors import StoreError
from .writer import read_root_attrs

SIDES = ("right", "left")


@dataclass(frozen=True)
class HandTrack:
    """Rows ``[0, T)`` of one hand; shapes as in the store schema."""

    side: str
    valid: np.ndarray  # (T,) bool
    arrays: dict[str, np.ndarray]

    def __getattr__(self, name: str) -> np.ndarray:
        try:
            return self.arrays[name]
        except KeyError:
            raise AttributeError(name) from None


class Result:
    """A result store opened for reading. ``refresh()`` re-reads the watermark."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.attrs: dict[str, Any] = read_root_attrs(self.path)
        self._group = zarr.open_group(store=str(self.path), mode="r", zarr_format=3)

    # -- state --------------------------------------------------------------------

    def refresh(self) -> int:
        """Re-read the root attributes; returns the new watermark."""
        self.attrs = read_root_attrs(self.path)
        return self.finalized_frames

    @property
    def finalized_frames(self) -> int:
        """Rows below this index are final and flushed; readers trust only those."""
        return int(self.attrs["finalized_frames"])

    @property
    def state(self) -> str:
        """``running`` (or crashed while running), ``complete``, ``interrupted`` or ``failed``."""
        return str(self.attrs.get("state", "unknown"))

    @property
    def complete(self) -> bool:
        return self.state == "complete"

    @property
    def fields(self) -> list[str]:
        return list(self.attrs.get("per_frame_arrays", []))

    # -- arrays -------------------------------------------------------------------

    def array(self, path: str, stop: int | None = None, start: int = 0) -> np.ndarray:
        """Rows ``[start, stop)`` of a per-frame array, ``stop`` capped at the
        watermark (default: the watermark), or a whole static array."""
        try:
            arr = zarr.open_array(store=str(self.path), path=path, mode="r", zarr_format=3)
        except (FileNotFoundError, zarr.errors.ArrayNotFoundError, KeyError):
            raise StoreError(f"{self.path}/{path}", "no such array in the store",
                             f"fields: {', '.join(self.fields)}") from None
        if path not in self.fields:  # static array
            return arr[...]
        wm = self.finalized_frames
        stop = wm if stop is None else min(stop, wm)
        if stop <= start:
            return np.empty((0, *arr.shape[1:]), dtype=arr.dtype)
        return arr[start:stop]

    @property
    def time(self) -> np.ndarray:
        return self.array("frames/time")

    @property
    def status(self) -> np.ndarray:
        return self.array("frames/status")

    @property
    def revision(self) -> np.ndarray:
        return self.array("frames/revision")

    @property
    def K(self) -> np.ndarray:
        return self.array("camera/K")

    def timing(self) -> dict[str, np.ndarray]:
        """``{stage: (T,) ms}`` for every timed stage, plus ``latency``."""
        return {f.split("/", 1)[1]: self.array(f) for f in self.fields if f.startswith("timing/")}

    def hand(self, side: str) -> HandTrack:
        if side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}")
        prefix = f"hand/{side}/"
        names = [f for f in self.fields if f.startswith(prefix)]
        if not names:
            raise StoreError(f"{self.path}", f"no {side} hand in the store")
        arrays = {f[len(prefix):]: self.array(f) for f in names}
        return HandTrack(side, arrays.get("valid", np.zeros(self.finalized_frames, bool)), arrays)

    def __repr__(self) -> str:
        return f"Result({str(self.path)!r}, state={self.state}, finalized_frames={self.finalized_frames})"


def open_result(path: str | Path) -> Result:
    """Open a result store for reading (also while it is being written)."""
    return Result(path)
