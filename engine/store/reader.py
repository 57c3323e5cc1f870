"""Typed access to a result store, safe while the store is still being written.

A reader trusts rows below the ``finalized_frames`` watermark only: it reads the
watermark first (fresh from disk), then at most that many rows of each array. It
never uses consolidated metadata nor an array's current shape to decide what is
data, since both run ahead of the data while a store grows.

Rows above the watermark may be read too, for a live view (``provisional=True``,
:meth:`Result.latest`): rows below ``flushed_rows`` have been written, some still
provisional (``frames/status`` 1) and liable to be rewritten with a higher
``frames/revision``. :meth:`Result.latest` reads several arrays as one consistent
snapshot: it retries while the writer's ``write_seq`` fence shows a rewrite under
way, so it never returns a segment half rewritten.
"""

from __future__ import annotations

import time
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


@dataclass(frozen=True)
class Snapshot:
    """Rows ``[start, stop)`` of several arrays read consistently (:meth:`Result.latest`)."""

    start: int
    stop: int
    finalized_frames: int
    """Rows below this are final; rows from here to ``stop`` may be provisional."""
    status: np.ndarray  # (n,) uint8: 0 empty, 1 provisional, 2 final
    revision: np.ndarray  # (n,) uint16
    arrays: dict[str, np.ndarray]

    def __getitem__(self, path: str) -> np.ndarray:
        return self.arrays[path]


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

    @property
    def flushed_rows(self) -> int:
        """Rows below this index have been written (final or provisional)."""
        return max(int(self.attrs.get("flushed_rows", 0)), self.finalized_frames)

    def array(self, path: str, stop: int | None = None, start: int = 0, provisional: bool = False) -> np.ndarray:
        """Rows ``[start, stop)`` of a per-frame array, ``stop`` capped at the
        watermark (default: the watermark), or a whole static array.

        ``provisional=True`` caps at ``flushed_rows`` instead: rows above the
        watermark may be provisional (one array, read as it is now; use
        :meth:`latest` for several arrays consistent with each other)."""
        arr = self._open(path)
        if path not in self.fields:  # static array
            return arr[...]
        wm = self.flushed_rows if provisional else self.finalized_frames
        stop = wm if stop is None else min(stop, wm)
        if stop <= start:
            return np.empty((0, *arr.shape[1:]), dtype=arr.dtype)
        return arr[start:stop]

    def latest(self, paths: list[str] | tuple[str, ...] = (), start: int = 0, stop: int | None = None,
               timeout: float = 5.0) -> Snapshot:
        """A consistent snapshot of every flushed row ``[start, stop)`` (final and provisional) of
        ``frames/status``, ``frames/revision`` and ``paths``, fresh from disk.

        Reads the root attributes, the arrays, then the attributes again; if the writer's
        ``write_seq`` fence was odd or moved, a rewrite overlapped the reads and they are
        repeated (up to ``timeout`` seconds)."""
        names = ("frames/status", "frames/revision", *paths)
        deadline = time.monotonic() + timeout
        while True:
            self.refresh()
            seq = int(self.attrs.get("write_seq", 0))
            end = self.flushed_rows if stop is None else min(stop, self.flushed_rows)
            wm = self.finalized_frames
            if seq % 2 == 0:
                arrays = {p: self._open(p) for p in names}  # opened now: shapes grow with the store
                data = {p: (a[start:end] if end > start else np.empty((0, *a.shape[1:]), a.dtype))
                        for p, a in arrays.items()}
                self.refresh()
                if int(self.attrs.get("write_seq", 0)) == seq:
                    return Snapshot(start, max(end, start), wm, data.pop("frames/status"),
                                    data.pop("frames/revision"), data)
            if time.monotonic() > deadline:
                raise StoreError(str(self.path), "the writer kept rewriting rows while they were read",
                                 "read again, or read final rows only")
            time.sleep(0.002)

    def _open(self, path: str):
        try:
            return zarr.open_array(store=str(self.path), path=path, mode="r", zarr_format=3)
        except (FileNotFoundError, zarr.errors.ArrayNotFoundError, KeyError):
            raise StoreError(f"{self.path}/{path}", "no such array in the store",
                             f"fields: {', '.join(self.fields)}") from None

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
