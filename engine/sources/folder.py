"""A folder of images (jpg, jpeg, png, bmp, webp), one frame per file.

Files are taken in *natural* order (``img2`` before ``img10``; case-insensitive,
then by the exact name), decoded with PyAV (no PIL). Frame ``k`` is the k-th
image and has time ``k / fps`` with ``fps = cfg.fps`` (30 when unset). Every
image must have the size of the first selected one.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from ..config import SourceConfig
from ..errors import SourceError
from ..frame import Frame
from ._av import AV_ERRORS
from ._common import av_reason, check_listable_dir, check_readable_file, count_selected, local_path
from .base import Source, SourceInfo

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
"""Image file extensions a folder source reads (case-insensitive)."""

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[tuple[tuple[int, int | str], ...], str]:
    """Sort key putting ``img2`` before ``img10`` (digit runs compare as numbers)."""
    parts = _DIGITS.split(name.lower())
    key = tuple((0, int(p)) if i % 2 else (1, p) for i, p in enumerate(parts) if p)
    return key, name


def list_images(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, in natural order."""
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()]
    return sorted(files, key=lambda p: natural_key(p.name))


def read_image(path: Path) -> np.ndarray:
    """The image at ``path`` as ``(H, W, 3)`` uint8 RGB; SourceError naming it if unreadable."""
    check_readable_file(path, "image")
    try:
        with av.open(str(path), mode="r") as container:
            if not container.streams.video:
                raise SourceError(str(path), "is not an image", "remove it from the folder")
            for frame in container.decode(video=0):
                return frame.to_ndarray(format="rgb24")
    except AV_ERRORS as e:
        raise SourceError(str(path), f"image is corrupt or unreadable; ffmpeg: {av_reason(e)}",
                          "remove or replace the file") from None
    raise SourceError(str(path), "image has no picture in it (corrupt or truncated)",
                      "remove or replace the file")


class FolderSource(Source):
    """Frames from the images of a folder, in natural file-name order."""

    kind = "folder"

    def __init__(self, uri: str, cfg: SourceConfig | None = None) -> None:
        self.uri = str(uri)
        self.cfg = cfg or SourceConfig()
        self.folder = local_path(self.uri)
        self.fps = self.cfg.fps or 30.0
        self.files: list[Path] = []
        self._first: tuple[int, Frame] | None = None
        self._size: tuple[int, int] | None = None
        self._stop = threading.Event()

    def open(self) -> SourceInfo:
        """List the images and decode the first selected one (size check)."""
        check_listable_dir(self.folder)
        try:
            self.files = list_images(self.folder)
        except OSError as e:
            raise SourceError(str(self.folder), f"cannot list folder: {av_reason(e)}") from None
        if not self.files:
            raise SourceError(str(self.folder), "folder has no images",
                              f"put {', '.join(e.lstrip('.') for e in IMAGE_EXTENSIONS)} files in it")
        n_total = len(self.files)
        width, height = 0, 0
        if self.cfg.start < n_total:
            first = self._frame(self.cfg.start)
            height, width = first.image.shape[:2]
            self._size = (width, height)
            self._first = (self.cfg.start, first)
        else:  # nothing selected; report the size of the first image anyway
            height, width = read_image(self.files[0]).shape[:2]
        live = bool(self.cfg.live)
        self.info = SourceInfo(uri=self.uri, kind=self.kind, live=live, fps=self.fps, width=width,
                               height=height, n_frames=count_selected(n_total, self.cfg))
        return self.info

    def _frame(self, index: int) -> Frame:
        path = self.files[index]
        image = read_image(path)
        if self._size is not None:
            w, h = self._size
            if image.shape[:2] != (h, w):
                raise SourceError(str(path), f"image is {image.shape[1]}x{image.shape[0]}, the folder's "
                                  f"frames are {w}x{h}", "resize it or remove it from the folder")
        return Frame(index=index, time=index / self.fps, image=image, arrival=time.monotonic())

    def frames(self) -> Iterator[Frame]:
        """Selected images in natural order; SourceError naming a bad image when met."""
        if not hasattr(self, "info"):
            raise RuntimeError("FolderSource.frames() called before open()")
        cfg = self.cfg
        stop = len(self.files) if cfg.end is None else min(cfg.end, len(self.files))
        for k in range(cfg.start, stop, cfg.stride):
            if self._stop.is_set():
                return
            if self._first is not None and self._first[0] == k:
                frame, self._first = self._first[1], None
                frame.arrival = time.monotonic()
            else:
                frame = self._frame(k)
            yield frame

    def close(self) -> None:
        """End ``frames()`` at the next image; safe from any thread."""
        self._stop.set()
