"""The per-machine cache: built hand models, network weights and engines, SDF grids, viewpoint models.

``$INSCENE_CACHE`` if set, else ``~/.cache/inscene``. Files there are written
once and never modified in place: a writer holds an exclusive lock file, checks
again whether another process produced the file meanwhile, writes a temporary
file in the same directory and renames it onto the target, so readers see either
nothing or a complete file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

ENV_CACHE = "INSCENE_CACHE"


def cache_root() -> Path:
    """``$INSCENE_CACHE`` or ``~/.cache/inscene`` (not created)."""
    root = os.environ.get(ENV_CACHE)
    return Path(root).expanduser() if root else Path.home() / ".cache" / "inscene"


def cache_dir(*parts: str, create: bool = True) -> Path:
    """A sub-directory of the cache (created unless ``create`` is False)."""
    path = cache_root().joinpath(*parts)
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


def write_atomic(target: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file next to ``target``, then rename it onto ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
    return target


def build_once(target: Path, build: Callable[[Path], None], valid: Callable[[Path], bool] | None = None) -> bool:
    """Make sure ``target`` exists (and passes ``valid``), building it under a lock if not.

    Returns True when this call built the file. ``build(tmp)`` writes to a
    temporary path that is renamed onto ``target`` when it returns.
    """
    ok = valid or (lambda p: p.exists())
    if ok(target):
        return False
    with file_lock(target.with_name(f".{target.name}.lock")):
        if ok(target):
            return False
        write_atomic(target, build)
    return True
