"""The per-machine cache of built model data (``$INSCENE_CACHE``, else ``~/.cache/inscene``).

Files are written once and never modified: a writer takes an exclusive lock file,
re-checks whether another process finished the same file meanwhile, writes to a
temporary file in the same directory and renames it into place, so a reader sees
either nothing or a complete file, also when two processes build concurrently.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ENV_CACHE = "INSCENE_CACHE"


def cache_dir(create: bool = True) -> Path:
    """The cache directory: ``$INSCENE_CACHE`` if set, else ``~/.cache/inscene``."""
    root = os.environ.get(ENV_CACHE)
    path = Path(root).expanduser() if root else Path.home() / ".cache" / "inscene"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if missing) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def write_atomic(target: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, 0o644)  # mkstemp makes it private; the cache is readable like any cache
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def build_once(target: Path, build: Callable[[Path], None]) -> bool:
    """Make sure ``target`` exists, calling ``build(tmp_path)`` under a lock if it does not.

    Returns True if this call built the file, False if it was already there (or was
    built by another process while this one waited for the lock).
    """
    if target.exists():
        return False
    with file_lock(target.with_name(target.name + ".lock")):
        if target.exists():
            return False
        write_atomic(target, build)
        return True


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
