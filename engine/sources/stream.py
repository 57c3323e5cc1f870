"""Network streams (rtsp, rtmp, srt, udp, tcp, http/https) decoded with PyAV.

* Opening gives up after ``cfg.timeout_s`` (PyAV ``timeout=`` plus the
  protocols' own ``rw_timeout`` / ``timeout`` options; RTSP goes over TCP). A
  stream that cannot be reached at open raises :class:`SourceError` at once
  (no retries), so a wrong URL fails fast.
* rtsp/rtmp/srt/udp/tcp streams are live; http(s) is live only when the
  container reports no duration (a live HTTP stream rather than a file served
  over HTTP). ``cfg.live`` overrides what ``info.live`` reports.
* A read error, or the end of a live stream, triggers a reconnect after
  ``reconnect_backoff_s * 2**k`` seconds (capped at ``reconnect_backoff_max_s``),
  ``k`` counting the failures since the last decoded frame;
  ``cfg.reconnect_attempts`` failures in a row raise :class:`SourceError`.
  ``self.reconnects`` counts the successful reconnections. Times stay strictly
  increasing across reconnects (a live stream resumes after the wall-clock
  gap); a non-live HTTP file resumes after the last frame it delivered.
* Frame indices count decoded frames from the first connection on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import av.container
import av.video

from ..config import SourceConfig
from ..errors import SourceError
from ..frame import Frame
from ._av import AV_ERRORS, AVSource
from ._common import av_reason, count_selected, is_selected, past_end
from .base import SourceInfo

LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "srt", "udp", "tcp")
"""URL schemes that are always live streams."""
STREAM_SCHEMES = (*LIVE_SCHEMES, "http", "https")
"""All network URL schemes a :class:`StreamSource` reads."""

Opener = Callable[[str, "dict[str, str]", float], av.container.InputContainer]
"""``(url, ffmpeg options, timeout_s) -> opened container``; replaceable in tests."""


class LiveClock:
    """Frame times in seconds for a stream that may restart or jump back.

    Within one connection a frame's time is ``(pts - t0) * time_base`` plus an
    offset; after a reconnect (``connection(..., rebase=True)``) the offset is
    chosen so the next frame comes after the last one by the wall-clock gap
    (at least one frame duration). Times never decrease.
    """

    def __init__(self, fps: float) -> None:
        self.frame_s = 1.0 / fps
        self.offset = 0.0
        self.last: float | None = None
        self._last_arrival = 0.0
        self._t0: int | None = None
        self._tb = (1, 1)
        self._rebase = False

    def connection(self, stream: av.video.VideoStream, *, rebase: bool) -> None:
        """Start timing a new connection's ``stream``."""
        tb = stream.time_base
        self._tb = (tb.numerator, tb.denominator) if tb else (1, 1_000_000)
        if rebase or self._t0 is None:  # a non-live input keeps its time origin
            self._t0 = stream.start_time
        self._rebase = rebase and self.last is not None

    def time(self, pts: int | None, now: float) -> float:
        """Time of a frame with timestamp ``pts`` that arrived at ``now`` (monotonic)."""
        if pts is None:
            t = 0.0 if self.last is None else self.last + self.frame_s
        else:
            if self._t0 is None:
                self._t0 = pts
            rel = ((pts - self._t0) * self._tb[0]) / self._tb[1]
            if self._rebase and self.last is not None:
                self.offset = self.last + max(self.frame_s, now - self._last_arrival) - rel
                self._rebase = False
            t = self.offset + rel
        if self.last is not None and t <= self.last:  # timestamps went back (wrap, restart)
            self.offset += self.last + self.frame_s - t
            t = self.last + self.frame_s
        self.last, self._last_arrival = t, now
        return t


class StreamSource(AVSource):
    """A network stream, reconnecting with bounded exponential backoff.

    Args:
        uri: the stream URL.
        cfg: selection, timeouts and reconnect policy.
        opener: replaces ``av.open`` (tests); gets ``(url, options, timeout_s)``.
    """

    kind = "stream"

    def __init__(self, uri: str, cfg: SourceConfig | None = None, *, opener: Opener | None = None) -> None:
        super().__init__(uri, cfg)
        self.scheme = urlsplit(self.uri).scheme.lower()
        self._bind_stop = True
        self._opener: Opener = opener or self._av_open
        self.natural_live = self.scheme in LIVE_SCHEMES
        self.backoffs: list[float] = []
        """Waits (s) done before each reconnect attempt, in order (diagnostics, tests)."""
        self._clock = LiveClock(30.0)
        self._failures = 0  # reconnect failures since the last decoded frame

    # -- connecting ----------------------------------------------------------

    def ffmpeg_options(self) -> dict[str, str]:
        """ffmpeg protocol options for this URL: I/O timeouts, RTSP over TCP."""
        micros = str(int(self.cfg.timeout_s * 1_000_000))
        options = {"rw_timeout": micros}
        if self.scheme in ("rtsp", "rtsps"):
            options.update(rtsp_transport="tcp", timeout=micros)
        elif self.scheme in ("udp", "tcp", "srt"):
            options["timeout"] = micros
        return options

    def _av_open(self, url: str, options: dict[str, str], timeout: float) -> av.container.InputContainer:
        return self._open_container(url, options=options, timeout=(timeout, timeout))

    def _open_failed(self, exc: BaseException) -> SourceError:
        if isinstance(exc, av.ExitError):
            problem = f"no answer within {self.cfg.timeout_s:g} s"
        elif "protocol not found" in av_reason(exc).lower():
            return SourceError(self.uri, f"this PyAV/ffmpeg build cannot read {self.scheme}:// streams",
                               "serve the stream over another protocol (rtsp, rtmp, http)")
        else:
            problem = f"cannot connect: {av_reason(exc)}"
        return SourceError(self.uri, problem, "check the URL and that the stream is running")

    def _connect(self) -> tuple[av.container.InputContainer, av.video.VideoStream]:
        container = self._opener(self.uri, self.ffmpeg_options(), self.cfg.timeout_s)
        try:
            stream = self._video_stream(container)
        except BaseException:
            container.close()
            raise
        return container, stream

    def open(self) -> SourceInfo:
        """Connect once (bounded by ``cfg.timeout_s``); SourceError if unreachable."""
        container, stream = self._connect()
        if self.scheme in ("http", "https"):
            self.natural_live = container.duration is None
        live = self.natural_live if self.cfg.live is None else bool(self.cfg.live)
        self.thread_type = "SLICE" if live else "AUTO"
        stream.thread_type = self.thread_type
        self._clock = LiveClock(self._rate(stream) or self.cfg.fps or 30.0)
        self._clock.connection(stream, rebase=False)
        total = None if self.natural_live or stream.frames <= 0 else stream.frames
        self._attach(container, stream)
        return self._info(stream, live=live, n_frames=count_selected(total, self.cfg))

    def _reconnect(self, failures: int, error: BaseException | None) -> bool:
        """Wait, then reconnect; False if closed meanwhile. SourceError when out of attempts."""
        cfg = self.cfg
        while failures < cfg.reconnect_attempts:
            delay = min(cfg.reconnect_backoff_s * 2**failures, cfg.reconnect_backoff_max_s)
            failures += 1
            self.backoffs.append(delay)
            if self._stop.wait(delay):
                return False
            try:
                container, stream = self._connect()
            except (SourceError, *AV_ERRORS) as e:
                error = e
                continue
            stream.thread_type = self.thread_type
            self._clock.connection(stream, rebase=self.natural_live)
            self._attach(container, stream)
            self.reconnects += 1
            self._failures = failures
            return not self._stop.is_set()
        if isinstance(error, SourceError):
            why = error.problem
        elif error is not None:
            why = av_reason(error)
        else:
            why = "the stream ended"
        raise SourceError(self.uri, f"stream lost ({why}); {cfg.reconnect_attempts} reconnect attempts failed",
                          "check that the stream is running; raise source.reconnect_attempts to wait longer")

    # -- reading -------------------------------------------------------------

    def frames(self) -> Iterator[Frame]:
        """Selected frames; reconnects on errors and on the end of a live stream."""
        if not self._check_opened():
            return
        cfg = self.cfg
        index = -1  # last decoded frame's index
        delivered = -1  # last index decoded before a reconnect (non-live resume)
        self._failures = 0
        try:
            while True:
                container, stream = self._container, self._stream
                if container is None or stream is None or self._stop.is_set():
                    return
                error: BaseException | None = None
                try:
                    for frame in self._decoded(container, stream):
                        if not self.natural_live and index < delivered:
                            index += 1  # a file over HTTP: skip what was already delivered
                            continue
                        index += 1
                        self._failures = 0
                        now = time.monotonic()
                        t = self._clock.time(frame.pts, now)
                        if past_end(index, cfg):
                            return
                        if is_selected(index, cfg):
                            yield Frame(index=index, time=t, image=frame.to_ndarray(format="rgb24"),
                                        arrival=time.monotonic())
                except AV_ERRORS as e:
                    error = e
                if self._stop.is_set():
                    return
                if error is None and not self.natural_live:
                    return  # a file served over HTTP ended
                if not self.natural_live:
                    delivered, index = max(delivered, index), -1
                if not self._reconnect(self._failures, error):
                    return
        finally:
            self._end()
