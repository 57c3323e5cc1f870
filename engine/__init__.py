"""inscene.engine — the streaming engine: sources, stages, store, CLI."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import os as _os

# torch's (and numba's) OpenMP workers must sleep when idle, not spin: the engine runs its
# stages in threads side by side on few cores, and spinning workers starve them (a window
# solve took many times longer under load). Takes effect if set before torch is first imported.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    __version__ = version("inscene")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

from .store.reader import HandTrack, Result, open_result  # noqa: E402

__all__ = ["HandTrack", "Result", "__version__", "open_result"]
