"""Webcams through Video4Linux2 (``/dev/videoN``), decoded with PyAV.

Accepted forms: ``/dev/video0``, ``webcam:0``, and either with capture options
as a query, e.g. ``/dev/video0?video_size=1280x720&framerate=30&input_format=mjpeg``
(passed to ffmpeg's v4l2 input as they are). A webcam is live; frame ``k`` is
the k-th captured frame and its time is the capture timestamp relative to the
first frame (kept strictly increasing).
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl

from ..config import SourceConfig
from ..errors import SourceError
from ..frame import Frame
from ._av import AV_ERRORS, AVSource
from ._common import av_reason, count_selected, is_selected, past_end
from .base import SourceInfo
from .stream import LiveClock

WEBCAM_OPTIONS = ("video_size", "framerate", "input_format", "pixel_format", "standard")
"""v4l2 capture options accepted in the URI's query."""


def parse_webcam_uri(uri: str) -> tuple[Path, dict[str, str]]:
    """``/dev/video0?k=v`` or ``webcam:0`` -> (device path, v4l2 options)."""
    base, _, query = uri.partition("?")
    if base.startswith("webcam:"):
        number = base[len("webcam:"):].lstrip("/")
        if not number.isdigit():
            raise SourceError(uri, "malformed webcam URI", "use webcam:0 or /dev/video0")
        base = f"/dev/video{number}"
    options: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in WEBCAM_OPTIONS:
            raise SourceError(uri, f"unknown webcam option '{key}'", f"valid options: {', '.join(WEBCAM_OPTIONS)}")
        options[key] = value
    return Path(base), options


def is_webcam_uri(uri: str) -> bool:
    """True for ``/dev/video*`` paths and ``webcam:N`` URIs."""
    return uri.startswith(("/dev/video", "webcam:"))


class WebcamSource(AVSource):
    """A V4L2 webcam. ``info.live`` is True unless ``cfg.live`` is False."""

    kind = "webcam"
    thread_type = "SLICE"

    def __init__(self, uri: str, cfg: SourceConfig | None = None) -> None:
        super().__init__(uri, cfg)
        self.device, self.options = parse_webcam_uri(self.uri)
        self._clock = LiveClock(30.0)

    def _check_device(self) -> None:
        dev = self.device
        if not dev.exists():
            found = sorted(glob.glob("/dev/video*"))
            hint = f"webcams found: {', '.join(found)}" if found else "no /dev/video* device on this machine"
            raise SourceError(str(dev), "no such webcam device", hint)
        try:
            fd = os.open(dev, os.O_RDWR | os.O_NONBLOCK)
        except PermissionError:
            raise SourceError(str(dev), "permission denied",
                              "add your user to the 'video' group, then log in again") from None
        except OSError as e:
            raise SourceError(str(dev), f"cannot open webcam: {av_reason(e)}", "is it in use or unplugged?") from None
        os.close(fd)

    def _open_failed(self, exc: BaseException) -> SourceError:
        return SourceError(str(self.device), f"cannot capture from webcam: {av_reason(exc)}",
                           "check the device and its options: video_size, framerate, input_format")

    def open(self) -> SourceInfo:
        """Open the device with the v4l2 input; SourceError if missing or busy."""
        self._check_device()
        container = self._open_container(str(self.device), format="v4l2", options=dict(self.options))
        stream = self._video_stream(container)
        self._clock = LiveClock(self._rate(stream) or self.cfg.fps or 30.0)
        self._clock.connection(stream, rebase=False)
        self._attach(container, stream)
        live = True if self.cfg.live is None else bool(self.cfg.live)
        return self._info(stream, live=live, n_frames=count_selected(None, self.cfg))

    def frames(self) -> Iterator[Frame]:
        """Captured frames until ``close()``; SourceError if the webcam stops delivering."""
        if not self._check_opened():
            return
        cfg = self.cfg
        index = -1
        container, stream = self._container, self._stream
        try:
            if container is None or stream is None:
                return
            try:
                for frame in self._decoded(container, stream):
                    index += 1
                    t = self._clock.time(frame.pts, time.monotonic())
                    if past_end(index, cfg):
                        return
                    if is_selected(index, cfg):
                        yield Frame(index=index, time=t, image=frame.to_ndarray(format="rgb24"),
                                    arrival=time.monotonic())
            except AV_ERRORS as e:
                if not self._stop.is_set():
                    raise SourceError(str(self.device), f"webcam stopped delivering frames after {index + 1}: "
                                      f"{av_reason(e)}", "check the cable or whether another program took it") from None
            if not self._stop.is_set():
                raise SourceError(str(self.device), f"webcam stream ended after {index + 1} frames",
                                  "check the cable or whether another program took it")
        finally:
            self._end()
