"""Make a blocking PyAV read return soon after another thread closes the source.

ffmpeg polls an *interrupt callback* while it waits on the network (every
~100 ms in its TCP/UDP loops). PyAV installs one when a container is opened
with ``timeout=``: it aborts the call once ``time.monotonic()`` has moved past
the start of the call plus the timeout. PyAV gives no public way to trigger it
from outside, so this module replaces the ``time`` module seen by
``av.container.core`` with a clock that behaves exactly like ``time`` except in
a thread bound to a *stop event* that is set: there every reading jumps far
ahead, so the pending call times out at its next poll and raises
``av.ExitError``.

Only reads done inside :func:`stoppable` in the current thread are affected;
other threads and containers see the real clock. If a future PyAV changes its
internals, :func:`install` returns False and reads simply end after the
container's own timeout (``SourceConfig.timeout_s``).
"""

from __future__ import annotations

import threading
import time as _time
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

_bound = threading.local()
_lock = threading.Lock()
_installed: bool | None = None


class _StopAwareClock:
    """Stand-in for the ``time`` module: ``monotonic()`` leaps once stopped."""

    _LEAP = 1.0e6  # seconds; far beyond any timeout

    def __init__(self, real: ModuleType) -> None:
        self._real = real
        self._leap = 0.0

    def monotonic(self) -> float:
        t = self._real.monotonic()
        stop: threading.Event | None = getattr(_bound, "stop", None)
        if stop is not None and stop.is_set():
            # Strictly increasing leaps: even a timeout started after the stop
            # was set expires at the very next poll.
            self._leap += self._LEAP
            return t + self._leap
        return t

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def install() -> bool:
    """Install the stop-aware clock into PyAV once; True when it is active."""
    global _installed
    with _lock:
        if _installed is None:
            try:
                import av.container.core as core
            except ImportError:  # pragma: no cover - PyAV layout changed
                _installed = False
            else:
                current = getattr(core, "time", None)
                if isinstance(current, _StopAwareClock):
                    _installed = True
                elif current is _time:
                    core.time = _StopAwareClock(_time)  # type: ignore[attr-defined]
                    _installed = True
                else:  # pragma: no cover - PyAV layout changed
                    _installed = False
        return _installed


def bind(stop: threading.Event | None) -> threading.Event | None:
    """Bind ``stop`` to the current thread; returns the previous binding.

    PyAV calls made by this thread on containers opened with a ``timeout``
    return (with ``av.ExitError``) shortly after ``stop`` is set from any
    thread. ``bind(previous)`` restores the earlier state.
    """
    previous: threading.Event | None = getattr(_bound, "stop", None)
    _bound.stop = stop
    return previous


@contextmanager
def stoppable(stop: threading.Event) -> Iterator[None]:
    """Context-manager form of :func:`bind` for one block of PyAV calls."""
    previous = bind(stop)
    try:
        yield
    finally:
        bind(previous)
