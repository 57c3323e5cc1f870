"""Queues between threads and their overflow policies.

Two policies: ``Blocking`` (a full queue makes the producer wait: backpressure,
used between stages and for file sources, which never drop) and ``DropOldest``
(a full queue discards its oldest item to make room: live sources, where the
newest frame matters most). Both are bounded, so memory stays bounded.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any


class Closed(Exception):
    """Raised by ``put`` on a queue whose consumer has gone away."""


class BoundedQueue:
    """A bounded FIFO with a policy for a full queue and counters."""

    def __init__(self, maxsize: int, drop_oldest: bool = False) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self.maxsize = maxsize
        self.drop_oldest = drop_oldest
        self._items: collections.deque[Any] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0
        self.put_count = 0
        self.high_water = 0
        self.on_drop = None  # optional callback(item) for dropped items

    def put(self, item: Any, force: bool = False) -> None:
        """Add ``item``. Blocking queues wait for room; drop-oldest queues discard
        the oldest item instead. ``force`` ignores the bound (end-of-stream markers)."""
        with self._cond:
            if not force:
                while len(self._items) >= self.maxsize:
                    if self._closed:
                        raise Closed
                    if self.drop_oldest:
                        old = self._items.popleft()
                        self.dropped += 1
                        if self.on_drop is not None:
                            self.on_drop(old)
                    else:
                        self._cond.wait()
            if self._closed and not force:
                raise Closed
            self._items.append(item)
            if not force:
                self.put_count += 1
                self.high_water = max(self.high_water, len(self._items))
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> Any:
        """Take the oldest item; raises ``TimeoutError`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError
                self._cond.wait(remaining)
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def close(self) -> None:
        """The consumer is gone: wake and fail blocked producers."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._items)
