"""The result store's schema: which arrays exist, their shapes, types and dimensions.

Schema version 1 (see README "Result store"). Every per-frame array has ``time``
as its first, appendable dimension; static arrays (intrinsics, faces, meshes) have
none. Stages declare the per-frame fields they produce as :class:`ArraySpec`
objects; the engine always writes the core fields below.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ArraySpec:
    """One array of the store.

    Attributes:
        path: path inside the store, e.g. ``"hand/right/joints"``.
        dtype: numpy dtype name.
        shape: per-frame shape (without the time axis) for per-frame arrays, the
            full shape for static arrays.
        dims: dimension names, ``time`` first for per-frame arrays.
        fill: fill value (what an unwritten row reads as).
        per_frame: True when the first axis is time.
        doc: one line for the README and ``inscene info``.
    """

    path: str
    dtype: str
    shape: tuple[int, ...]
    dims: tuple[str, ...]
    fill: float | int | bool
    per_frame: bool = True
    doc: str = ""

    def __post_init__(self) -> None:
        ndim = len(self.shape) + (1 if self.per_frame else 0)
        if len(self.dims) != ndim:
            raise ValueError(f"{self.path}: {len(self.dims)} dimension names for {ndim} dimensions")
        if self.per_frame and self.dims[0] != "time":
            raise ValueError(f"{self.path}: per-frame arrays have 'time' as their first dimension")

    def empty_rows(self, n: int) -> np.ndarray:
        """``n`` rows of fill values, ``(n, *shape)``."""
        return np.full((n, *self.shape), self.fill, dtype=self.dtype)


def core_specs() -> list[ArraySpec]:
    """Per-frame arrays the engine writes for every run."""
    return [
        ArraySpec("frames/time", "float64", (), ("time",), np.nan, doc="presentation time, s"),
        ArraySpec("frames/source_index", "int64", (), ("time",), -1, doc="frame index in the source"),
        ArraySpec("frames/status", "uint8", (), ("time",), 0, doc="0 empty, 1 provisional, 2 final"),
        ArraySpec("frames/revision", "uint16", (), ("time",), 0, doc="rewrites of the row so far"),
        ArraySpec("camera/T_world_cam", "float64", (4, 4), ("time", "row", "col"), np.nan,
                  doc="camera pose in the world frame"),
        ArraySpec("timing/latency", "float32", (), ("time",), np.nan,
                  doc="glass-to-final: arrival of the frame to its final write, ms"),
    ]


def timing_spec(stage: str) -> ArraySpec:
    """Per-frame time a stage spent on a frame, in milliseconds."""
    return ArraySpec(f"timing/{stage}", "float32", (), ("time",), np.nan, doc=f"ms spent in stage '{stage}'")


K_SPEC = ArraySpec("camera/K", "float64", (3, 3), ("row", "col"), np.nan, per_frame=False,
                   doc="pinhole intrinsics")
