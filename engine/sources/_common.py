"""Helpers shared by the sources: frame selection, path checks, one-line errors.

Selection is always in *source frame indices*: a source numbers its frames
0, 1, 2, ... in presentation order and yields those with
``start <= index < end`` and ``(index - start) % stride == 0``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..config import SourceConfig
from ..errors import SourceError, one_line


def is_selected(index: int, cfg: SourceConfig) -> bool:
    """True when source frame ``index`` is one the config asks for."""
    if index < cfg.start or (cfg.end is not None and index >= cfg.end):
        return False
    return (index - cfg.start) % cfg.stride == 0


def count_selected(n_total: int | None, cfg: SourceConfig) -> int | None:
    """How many of ``n_total`` source frames are selected (None when unknown).

    With an unknown total, the count is still known when ``cfg.end`` bounds it.
    """
    if n_total is None:
        if cfg.end is None:
            return None
        n_total = cfg.end
    stop = n_total if cfg.end is None else min(cfg.end, n_total)
    return len(range(cfg.start, max(stop, cfg.start), cfg.stride))


def past_end(index: int, cfg: SourceConfig) -> bool:
    """True when no frame at or after ``index`` can be selected any more."""
    return cfg.end is not None and index >= cfg.end


def local_path(uri: str) -> Path:
    """The filesystem path of a plain path or a ``file:`` / ``file://`` URI."""
    if uri.lower().startswith("file:"):
        uri = uri[len("file:"):]
        if uri.startswith("//"):
            uri = uri[2:]
    return Path(uri).expanduser()


def av_reason(exc: BaseException) -> str:
    """A short, single-line reason from a PyAV/ffmpeg (or OS) exception.

    PyAV messages look like ``[Errno 1094995529] Invalid data found when
    processing input: 'x.mp4'``; the errno and the repeated file name are dropped
    because the caller names the input already.
    """
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", one_line(Exception(text)))
    text = re.sub(r":\s*'[^']*'\s*$", "", text)
    return text.rstrip(". ") or type(exc).__name__


def check_readable_file(path: Path, what: str = "file") -> None:
    """Raise :class:`SourceError` unless ``path`` is an existing, readable file.

    The check opens the file (rather than trusting ``os.access``) so that every
    reason the OS refuses it is reported as such.
    """
    if not path.exists():
        hint = "check the path"
        if path.parent.is_dir():
            hint = f"check the path; the folder {path.parent} exists"
        raise SourceError(str(path), f"{what} not found", hint)
    if path.is_dir():
        raise SourceError(str(path), f"is a directory, not a {what}")
    try:
        fd = os.open(path, os.O_RDONLY)
    except PermissionError:
        raise SourceError(str(path), "permission denied", "make the file readable (chmod +r)") from None
    except OSError as e:
        raise SourceError(str(path), f"cannot be read: {av_reason(e)}") from None
    os.close(fd)
    if path.stat().st_size == 0:
        raise SourceError(str(path), f"{what} is empty (0 bytes)", "re-export or re-copy it")


def check_listable_dir(path: Path) -> None:
    """Raise :class:`SourceError` unless ``path`` is a directory we may list."""
    if not path.exists():
        raise SourceError(str(path), "folder not found", "check the path")
    if not path.is_dir():
        raise SourceError(str(path), "is not a folder")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except PermissionError:
        raise SourceError(str(path), "permission denied", "make the folder readable (chmod +rx)") from None
    except OSError as e:
        raise SourceError(str(path), f"cannot be read: {av_reason(e)}") from None
    os.close(fd)


_CONTAINER_MAGIC: tuple[tuple[int, bytes], ...] = (
    (4, b"ftyp"),  # mp4 / mov
    (0, b"\x1a\x45\xdf\xa3"),  # matroska / webm
    (0, b"RIFF"),  # avi
    (0, b"FLV"),
    (0, b"\x00\x00\x01\xba"),  # mpeg-ps
)


def looks_like_container(path: Path) -> bool:
    """True when the file starts like a known video container (for messages)."""
    try:
        with open(path, "rb") as f:
            head = f.read(189)
    except OSError:
        return False
    if len(head) == 189 and head[0] == head[188] == 0x47:  # mpeg-ts sync bytes
        return True
    return any(head[off : off + len(magic)] == magic for off, magic in _CONTAINER_MAGIC)
