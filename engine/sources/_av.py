"""What the PyAV sources share: opening, the video stream, the decode loop, close.

Subclasses (:mod:`.video`, :mod:`.stream`, :mod:`.webcam`) decide how to open
the container and what to do at the end of the stream or on a read error. The
decode loop here demuxes one packet at a time under a lock, so that ``close()``
from another thread never frees the container under a running read: it sets a
stop flag and closes the container itself only when no read is in progress
(otherwise the reading thread closes it on its way out).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import av
import av.container
import av.stream
import av.video

from ..config import SourceConfig
from ..errors import SourceError
from . import _interrupt
from ._common import av_reason
from .base import Source, SourceInfo

AV_ERRORS: tuple[type[BaseException], ...] = (av.FFmpegError, OSError, EOFError)
"""What PyAV raises for input it cannot open or read."""


class AVSource(Source):
    """Base of the sources decoded by PyAV (files, network streams, webcams).

    Attributes:
        decoded: frames decoded so far, including those skipped by start/stride.
        decode_errors: packets the decoder rejected (corrupt data).
    """

    kind = "file"
    thread_type = "AUTO"
    """Decoder threading: frame+slice for throughput; live sources use "SLICE"
    because frame threading delays each frame by one decode per thread."""

    def __init__(self, uri: str, cfg: SourceConfig | None = None) -> None:
        self.uri = str(uri)
        self.cfg = cfg or SourceConfig()
        self.decoded = 0
        self.decode_errors = 0
        self.reconnects = 0
        self._container: av.container.InputContainer | None = None
        self._stream: av.video.VideoStream | None = None
        self._stop = threading.Event()
        self._io = threading.Lock()
        self._bind_stop = False  # network sources: let close() interrupt reads

    # -- opening -------------------------------------------------------------

    def _open_container(self, target: str, **kwargs: Any) -> av.container.InputContainer:
        """``av.open(target, **kwargs)``; failures go through :meth:`_open_failed`."""
        if self._bind_stop:
            _interrupt.install()
        previous = _interrupt.bind(self._stop) if self._bind_stop else None
        try:
            return av.open(target, mode="r", **kwargs)
        except AV_ERRORS as e:
            if self._stop.is_set():
                raise SourceError(self.uri, "closed while opening") from None
            raise self._open_failed(e) from None
        finally:
            if self._bind_stop:
                _interrupt.bind(previous)

    def _open_failed(self, exc: BaseException) -> SourceError:
        """The error to raise when ``av.open`` fails (subclasses refine it)."""
        return SourceError(self.uri, f"cannot be opened: {av_reason(exc)}")

    def _video_stream(self, container: av.container.InputContainer) -> av.video.VideoStream:
        """The first video stream, set up for fast decoding; SourceError if none."""
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["no streams at all"]
            container.close()
            raise SourceError(self.uri, f"has no video stream (found: {', '.join(kinds)})",
                              "give a file or stream with video")
        stream = container.streams.video[0]
        stream.thread_type = self.thread_type
        discard_all = getattr(getattr(av.stream, "Discard", None), "all", None)
        for other in container.streams:
            if other is not stream and discard_all is not None:
                other.discard = discard_all  # the demuxer skips audio, subtitles, ...
        if stream.codec_context.width <= 0 or stream.codec_context.height <= 0:
            container.close()
            raise SourceError(self.uri, "video stream has no frame size (corrupt or unsupported codec)")
        return stream

    def _attach(self, container: av.container.InputContainer, stream: av.video.VideoStream) -> None:
        with self._io:
            self._release()
            self._container, self._stream = container, stream
        if self._stop.is_set():  # closed while opening
            self.close()

    @staticmethod
    def _rate(stream: av.video.VideoStream) -> float | None:
        """Nominal frame rate of ``stream`` (average, else guessed), or None."""
        for rate in (stream.average_rate, stream.guessed_rate):
            if rate is not None and rate > 0:
                return float(rate)
        return None

    def _info(self, stream: av.video.VideoStream, *, live: bool, n_frames: int | None) -> SourceInfo:
        self.info = SourceInfo(uri=self.uri, kind=self.kind, live=live, fps=self._rate(stream),
                               width=stream.codec_context.width, height=stream.codec_context.height,
                               n_frames=n_frames)
        return self.info

    # -- reading -------------------------------------------------------------

    def _decoded(self, container: av.container.InputContainer,
                 stream: av.video.VideoStream) -> Iterator[av.VideoFrame]:
        """Frames of ``stream`` in presentation order until EOF or ``close()``.

        Packets the decoder rejects are counted in ``decode_errors`` and skipped
        (decoding goes on with what can be decoded). Read errors propagate as
        PyAV exceptions, except after ``close()``, which ends the loop quietly.
        """
        demux = container.demux(stream)
        while True:
            with self._io:
                if self._stop.is_set() or self._container is not container:
                    return
                previous = _interrupt.bind(self._stop) if self._bind_stop else None
                try:
                    packet = next(demux)
                except StopIteration:
                    return
                except AV_ERRORS:
                    if self._stop.is_set():
                        return
                    raise
                finally:
                    if self._bind_stop:
                        _interrupt.bind(previous)
                try:
                    frames = packet.decode()
                except av.FFmpegError:
                    self.decode_errors += 1
                    continue
            self.decoded += len(frames)
            yield from frames

    # -- closing -------------------------------------------------------------

    def _release(self) -> None:
        """Close the container; the caller holds ``self._io``."""
        container, self._container, self._stream = self._container, None, None
        if container is not None:
            try:
                container.close()
            except AV_ERRORS:  # pragma: no cover - closing a broken input
                pass

    def close(self) -> None:
        """Stop reading and release the input; safe from any thread, idempotent.

        A read blocked in another thread returns soon (network reads are
        interrupted; see :mod:`._interrupt`) and that thread closes the input.
        """
        self._stop.set()
        # A read in progress returns soon; if it does not within the wait, the
        # reading thread releases the container on its way out.
        if self._io.acquire(timeout=0.5):
            try:
                self._release()
            finally:
                self._io.release()

    def _check_opened(self) -> bool:
        """For ``frames()``: False when closed already; RuntimeError before ``open()``."""
        if self._container is not None:
            return True
        if self._stop.is_set():
            return False
        raise RuntimeError(f"{type(self).__name__}.frames() called before open()")

    def _end(self) -> None:
        """Called by ``frames()`` when it finishes: release the input."""
        with self._io:
            self._release()
