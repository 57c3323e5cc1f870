"""Local video files (mp4, mov, mkv, webm, avi, ts, ...) decoded with PyAV.

Frame ``k`` is the k-th frame in presentation order; its time is
``(pts - stream.start_time) * time_base`` seconds (``k / fps`` for a frame
without a timestamp). A large ``cfg.start`` is reached by a keyframe seek and a
decode forward, dropping the frames before ``start``. The seek is used only on
constant-frame-rate streams, where a frame's index follows from its timestamp
(``round((pts - start_time) / frame_duration)``), so the frames and times are
exactly those of a decode from frame 0; if the seek lands past ``start`` (a
poor container index), the file is decoded from the beginning instead.

At the end of the file, fewer frames than the container announced (or decode
errors with no announced count) raise :class:`SourceError` after every frame
that could be decoded has been yielded.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from fractions import Fraction

import av.video

from ..config import SourceConfig
from ..errors import SourceError
from ..frame import Frame
from ._av import AV_ERRORS, AVSource
from ._common import (
    av_reason,
    check_readable_file,
    count_selected,
    is_selected,
    local_path,
    looks_like_container,
)
from .base import SourceInfo

SEEK_ATTEMPTS: tuple[tuple[int, float], ...] = ((0, 0.0), (3, 0.0), (3, 2.0), (3, 10.0))
"""Seek targets tried in turn, as (frames, seconds) before ``start``, until one
lands on a keyframe at or before ``start``: exactly at ``start`` first, then a
few frames earlier (B-frame reordering), then further back (demuxers such as
MPEG-TS seek to a packet, not a keyframe). After that, decode from frame 0."""


class _SeekMissed(Exception):
    """The seek landed after ``start``; decode from the beginning instead."""


class VideoFileSource(AVSource):
    """A local video file. ``info.live`` is False unless ``cfg.live`` says so."""

    kind = "file"

    def __init__(self, uri: str, cfg: SourceConfig | None = None) -> None:
        super().__init__(uri, cfg)
        self.path = local_path(self.uri)
        self.seeked = False
        """True when the last ``frames()`` reached ``start`` by seeking."""
        self._total: int | None = None
        self._tb = (0, 1)
        self._t0: int | None = None
        self._frame_ticks: Fraction | None = None
        self._fps = 30.0

    def open(self) -> SourceInfo:
        """Check and open the file; :class:`SourceError` if it is not a readable video."""
        check_readable_file(self.path, "video file")
        container = self._open_container(str(self.path))
        stream = self._video_stream(container)
        self._total = stream.frames if stream.frames > 0 else None
        tb = stream.time_base or Fraction(1, 1_000_000)
        self._tb = (tb.numerator, tb.denominator)
        self._t0 = stream.start_time
        self._fps = self._rate(stream) or self.cfg.fps or 30.0
        self._attach(container, stream)
        live = bool(self.cfg.live)
        return self._info(stream, live=live, n_frames=count_selected(self._total, self.cfg))

    def _open_failed(self, exc: BaseException) -> SourceError:
        reason = av_reason(exc)
        if looks_like_container(self.path):
            return SourceError(str(self.path), f"video file is corrupt or truncated; ffmpeg: {reason}",
                               "re-export or re-download it")
        return SourceError(str(self.path), f"not a video file; ffmpeg: {reason}",
                           "give a video (mp4, mov, mkv, webm, avi, ...) or an image folder")

    # -- reading -------------------------------------------------------------

    def frames(self) -> Iterator[Frame]:
        """Selected frames in order; SourceError if the file turns out truncated."""
        if not self._check_opened():
            return
        try:
            if self.cfg.start > 0 and self._t0 is not None:  # seeking needs a time origin
                self._frame_ticks = _cfr_frame_ticks(self._stream)
            if self.cfg.start > 0 and self._frame_ticks is not None:
                for frames_back, seconds_back in SEEK_ATTEMPTS:
                    back = frames_back + math.ceil(seconds_back * self._fps)
                    if self.cfg.start - back <= 0:
                        break
                    try:
                        yield from self._decode(seek_index=self.cfg.start - back)
                        return
                    except _SeekMissed:
                        continue
                self._reopen()
            yield from self._decode(seek_index=None)
        finally:
            self._end()

    def _reopen(self) -> None:
        """Start over from the beginning of the file (after missed seeks)."""
        container = self._open_container(str(self.path))
        self._attach(container, self._video_stream(container))
        self.seeked = False

    def _seek(self, index: int) -> None:
        """Seek to the keyframe at or before frame ``index``; _SeekMissed on failure."""
        assert self._container is not None and self._stream is not None and self._frame_ticks is not None
        t0 = self._t0 or 0
        target = t0 + int(index * self._frame_ticks)
        try:
            with self._io:
                self._container.seek(target, backward=True, stream=self._stream)
        except AV_ERRORS as e:
            raise _SeekMissed from e
        self.seeked = True

    def _decode(self, *, seek_index: int | None) -> Iterator[Frame]:
        """Decode from the start, or after a seek to ``seek_index`` (indices from pts).

        After a seek, frames output before the first keyframe are dropped (they
        may miss references); :class:`_SeekMissed` is raised, before anything
        is yielded, if that keyframe lies after ``cfg.start``.
        """
        cfg = self.cfg
        container, stream = self._container, self._stream
        if container is None or stream is None:
            return
        seek = seek_index is not None
        if seek_index is not None:
            self._seek(seek_index)
        num, den = self._tb
        ticks = self._frame_ticks
        last = -1
        try:
            for frame in self._decoded(container, stream):
                pts = frame.pts
                if self._t0 is None and pts is not None:
                    self._t0 = pts
                if not seek:
                    index = last + 1
                elif last < 0:
                    if not frame.key_frame:
                        continue
                    if pts is None or ticks is None:
                        raise _SeekMissed
                    index = round((pts - (self._t0 or 0)) / ticks)
                    if index > cfg.start:
                        raise _SeekMissed
                elif pts is None or ticks is None:
                    index = last + 1
                else:
                    index = max(round((pts - (self._t0 or 0)) / ticks), last + 1)
                last = index
                if cfg.end is not None and index >= cfg.end:
                    return
                if not is_selected(index, cfg):
                    continue
                if pts is None:
                    t = index / self._fps
                else:
                    t = ((pts - (self._t0 or 0)) * num) / den
                image = frame.to_ndarray(format="rgb24")
                yield Frame(index=index, time=t, image=image, arrival=time.monotonic())
        except AV_ERRORS as e:
            raise SourceError(str(self.path), f"read error after {last + 1} frames: {av_reason(e)}",
                              "the file may be truncated or corrupt") from None
        if self._stop.is_set():
            return
        if seek and last < 0:
            raise _SeekMissed
        self._check_complete(last + 1)

    def _check_complete(self, n_seen: int) -> None:
        """Raise SourceError if decoding ended before the frames the file announced."""
        expected = self._total
        if expected is None:
            estimate = _estimated_frames(self._stream)
            if estimate is not None and self.cfg.end is not None:
                estimate = min(estimate, self.cfg.end)
            if estimate is not None and n_seen < 0.95 * estimate - 1:
                raise SourceError(str(self.path), f"is truncated: decoding ended after {n_seen} of about "
                                  f"{estimate} frames", "re-export or re-download the file")
            if self.decode_errors:
                raise SourceError(str(self.path), f"is corrupt: {self.decode_errors} packets could not be "
                                  f"decoded ({n_seen} frames decoded)", "re-export or re-download the file")
            return
        if self.cfg.end is not None and self.cfg.end <= expected:
            expected_here = self.cfg.end
        else:
            expected_here = expected
        if n_seen < expected_here:
            what = "is truncated or corrupt" if self.decode_errors else "is truncated"
            raise SourceError(str(self.path), f"{what}: decoding ended after {n_seen} of {expected} frames",
                              "re-export or re-download the file")


def _cfr_frame_ticks(stream: av.video.VideoStream | None) -> Fraction | None:
    """Frame duration in time-base ticks when the stream is constant-rate, else None.

    Constant rate is taken as proven when the container indexes every frame
    with evenly spaced timestamps (mp4/mov), and as given when the average and
    the guessed (lowest common) frame rates agree (formats without a full index).
    """
    if stream is None:
        return None
    rate = stream.average_rate
    tb = stream.time_base
    if not rate or rate <= 0 or not tb:
        return None
    ticks = Fraction(1) / (Fraction(rate) * Fraction(tb))
    try:
        entries = stream.index_entries
        n_entries = len(entries) if entries is not None else 0
    except (AttributeError, *AV_ERRORS):  # older PyAV: no index access
        entries, n_entries = None, 0
    if entries is not None and n_entries > 1 and n_entries == stream.frames:
        stamps = sorted(e.timestamp for e in entries)
        steps = {b - a for a, b in zip(stamps, stamps[1:])}
        if max(steps) - min(steps) > 1 or abs(min(steps) - ticks) > 1:
            return None
        return ticks
    guessed = stream.guessed_rate
    if guessed is None or Fraction(guessed) != Fraction(rate):
        return None
    return ticks


DURATION_IN_HEADER = ("matroska", "webm")
"""Formats whose header states the duration (used to detect truncation when
the frame count is not announced); other formats may only estimate it."""


def _estimated_frames(stream: av.video.VideoStream | None) -> int | None:
    """Frame count implied by a duration stated in the file's header, or None."""
    if stream is None or stream.container is None:
        return None
    if not any(name in stream.container.format.name for name in DURATION_IN_HEADER):
        return None
    rate = stream.average_rate
    if not rate or rate <= 0:
        return None
    seconds: float | None = None
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
    elif stream.container.duration is not None:
        seconds = stream.container.duration / 1_000_000
    if seconds is None or seconds <= 0:
        return None
    return round(seconds * float(rate))
