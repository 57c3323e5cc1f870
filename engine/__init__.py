"""inscene.engine — the streaming engine: sources, stages, store, CLI."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("inscene")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

from .store.reader import HandTrack, Result, open_result  # noqa: E402

__all__ = ["HandTrack", "Result", "__version__", "open_result"]
