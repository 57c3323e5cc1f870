"""The source interface: something that yields decoded frames in order."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

from ..frame import Frame


@dataclass(frozen=True)
class SourceInfo:
    """What is known about a source once it is open.

    Attributes:
        uri: the source as the user gave it (path, URL, device, ``gen:`` URI).
        kind: ``"file"``, ``"folder"``, ``"webcam"``, ``"stream"`` or ``"generator"``.
        live: True when frames arrive in real time and may be dropped under load
            (webcams, network streams, paced generators); files never drop.
        fps: nominal frame rate, or None when unknown.
        width, height: frame size in pixels.
        n_frames: number of frames the source will yield after start/end/stride,
            when known in advance (files, folders, finite generators), else None.
    """

    uri: str
    kind: str
    live: bool
    fps: float | None
    width: int
    height: int
    n_frames: int | None = None


class Source(ABC):
    """A source of frames.

    ``open()`` validates the input and returns its :class:`SourceInfo`, raising
    :class:`inscene.engine.errors.SourceError` (one line naming the input) when it
    cannot be read. ``frames()`` then yields :class:`Frame` objects in presentation
    order; it raises ``SourceError`` if the input turns out to be corrupt or
    truncated part-way (after yielding every frame it could decode). ``close()``
    releases the input and may be called from another thread to stop a blocking
    read (live sources).
    """

    info: SourceInfo

    @abstractmethod
    def open(self) -> SourceInfo: ...

    @abstractmethod
    def frames(self) -> Iterator[Frame]: ...

    @abstractmethod
    def close(self) -> None: ...

    reconnects: int = 0
    """How many times a network source reconnected (0 for others)."""

    def __enter__(self) -> Source:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
