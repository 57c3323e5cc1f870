"""Frame sources: video files, image folders, webcams, network streams, generator.

:func:`open_source` picks the source for a URI; the caller then calls
``open()`` (which validates the input and returns its :class:`SourceInfo`),
iterates ``frames()`` and finally ``close()``s it. Every problem with the input
is raised as :class:`~inscene.engine.errors.SourceError`: one line naming the
input, what is wrong and what to do.

==================================================  ==========================
URI                                                 source
==================================================  ==========================
``gen:?frames=300&size=640x480&fps=30&...``          :class:`GeneratorSource`
``/dev/video0``, ``webcam:0`` (``?video_size=...``)   :class:`WebcamSource`
``rtsp:// rtsps:// rtmp:// rtmps:// srt:// udp://``  :class:`StreamSource`
``tcp:// http:// https://``
an existing directory (``file://`` allowed)          :class:`FolderSource`
any other path (``file://`` allowed)                 :class:`VideoFileSource`
==================================================  ==========================
"""

from __future__ import annotations

import re
from pathlib import Path

from ..config import SourceConfig
from ..errors import SourceError
from ._common import local_path
from .base import Source, SourceInfo
from .folder import IMAGE_EXTENSIONS, FolderSource
from .generator import GeneratorSource, MovingDisc, read_index
from .stream import LIVE_SCHEMES, STREAM_SCHEMES, StreamSource
from .video import VideoFileSource
from .webcam import WebcamSource, is_webcam_uri

__all__ = [
    "IMAGE_EXTENSIONS",
    "LIVE_SCHEMES",
    "STREAM_SCHEMES",
    "SUPPORTED_SCHEMES",
    "FolderSource",
    "GeneratorSource",
    "MovingDisc",
    "Source",
    "SourceInfo",
    "StreamSource",
    "VideoFileSource",
    "WebcamSource",
    "open_source",
    "read_index",
]

SUPPORTED_SCHEMES = ("file", "gen", "webcam", *STREAM_SCHEMES)
"""URI schemes :func:`open_source` accepts (plain paths need none)."""

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


def open_source(uri: str, cfg: SourceConfig | None = None) -> Source:
    """The source for ``uri``, configured by ``cfg`` but not opened yet.

    Raises :class:`SourceError` for an empty URI or an unsupported scheme
    (listing the supported ones) or a malformed ``gen:`` / ``webcam:`` URI.
    Whether the input exists and can be read is checked by ``open()``.
    """
    cfg = cfg or SourceConfig()
    uri = str(uri)
    if not uri.strip():
        raise SourceError("source", "empty source URI", "give a video file, image folder, webcam or stream URL")
    match = _SCHEME.match(uri)
    scheme = match.group(1).lower() if match else ""
    if len(scheme) == 1:  # a Windows drive letter, not a scheme
        scheme = ""
    if scheme == "gen":
        return GeneratorSource.from_uri(uri, cfg)
    if scheme == "webcam" or (not scheme and is_webcam_uri(uri)):
        return WebcamSource(uri, cfg)
    if scheme in STREAM_SCHEMES:
        return StreamSource(uri, cfg)
    if scheme and scheme != "file" and not Path(uri).exists():
        raise SourceError(uri, f"unsupported URL scheme '{scheme}://'",
                          f"supported: {', '.join(s + ':' for s in SUPPORTED_SCHEMES)} or a file/folder path")
    if local_path(uri).is_dir():
        return FolderSource(uri, cfg)
    return VideoFileSource(uri, cfg)
