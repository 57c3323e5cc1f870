"""What flows through the engine: a source frame and the packet built around it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any

import numpy as np


class Status(IntEnum):
    """Row status in the store (``/frames/status``)."""

    EMPTY = 0
    PROVISIONAL = 1
    FINAL = 2


@dataclass(slots=True)
class Frame:
    """One decoded frame.

    Attributes:
        index: position in the source's own frame sequence (before start/stride).
        time: presentation time in seconds, from the container's timestamps.
        image: RGB image, ``(H, W, 3)`` uint8.
        arrival: ``time.monotonic()`` when the frame left the decoder (glass time
            for live sources); latency is measured from here.
    """

    index: int
    time: float
    image: np.ndarray
    arrival: float


@dataclass(slots=True)
class Packet:
    """A frame on its way through the stages.

    ``row`` is the frame's row in the store (0, 1, 2, ... over the frames that
    entered the engine). Stages add their products to ``data`` under the names
    they declare; store fields go to ``fields`` under their store path (e.g.
    ``"hand/right/joints"``), one per-frame value each. ``timing`` collects the
    milliseconds each stage spent on this frame.
    """

    row: int
    frame: Frame
    data: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, np.ndarray] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    status: Status = Status.FINAL
    revision: int = 0
    replay: bool = False
    """True for frames re-fed on resume only to rebuild stage state; not written."""


NO_IMAGE = np.zeros((0, 0, 3), np.uint8)
"""The image of a frame that no longer carries its pixels (no stage after here reads them)."""


def without_pixels(frame: Frame) -> Frame:
    """``frame`` with :data:`NO_IMAGE` for its image."""
    return replace(frame, image=NO_IMAGE)


def without_image(packet: Packet) -> Packet:
    """A copy of ``packet`` whose frame carries no pixels (data, fields and timings are shared)."""
    return replace(packet, frame=without_pixels(packet.frame))
