"""The per-machine cache of built model data (``$INSCENE_CACHE``, else ``~/.cache/inscene``).

Files are written once and never modified: a writer takes an exclusive lock file,
re-checks whether another process finished the same file meanwhile, writes to a
temporary file in the same directory and renames it into place, so a reader sees
either nothing or a complete file, also when two processes build concurrently.
"""

from __future__ import annotations

import sys
import threading
import time

from inscene.engine.cache import ENV_CACHE, build_once, cache_dir, file_lock, write_atomic  # noqa: F401


class Progress:
    """Start/end lines on stderr for a slow step, with a heartbeat every ``every`` seconds."""

    def __init__(self, what: str, expected: str = "", every: float = 20.0) -> None:
        self.what = what
        self.expected = expected
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.t0 = 0.0

    def _say(self, line: str) -> None:
        sys.stderr.write(f"inscene: {line}\n")
        sys.stderr.flush()

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            self._say(f"{self.what}: still working ({time.monotonic() - self.t0:.0f} s)")

    def __enter__(self) -> Progress:
        self.t0 = time.monotonic()
        extra = f" (once per machine, {self.expected})" if self.expected else ""
        self._say(f"{self.what}{extra} ...")
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        elapsed = time.monotonic() - self.t0
        status = "done" if exc_type is None else f"failed ({exc_type.__name__})"
        self._say(f"{self.what}: {status} in {elapsed:.1f} s")
