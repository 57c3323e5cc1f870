"""The on-disk cache of built kernel data (``$INSCENE_CACHE``, else ``~/.cache/inscene``).

Kernel data (SDF grids) is keyed by a hash of its inputs, written once to a temporary
file in the same directory and renamed into place, so a reader sees either nothing
or a complete file, also when two processes build the same entry at once (the last
rename wins; both wrote the same bytes).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from inscene.engine.cache import ENV_CACHE, cache_dir, write_atomic  # noqa: F401  (one cache for the project)


def array_hash(*arrays: np.ndarray, extra: str = "") -> str:
    """A hex sha256 over the dtype, shape and bytes of ``arrays`` and the string ``extra``."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    h.update(extra.encode())
    return h.hexdigest()


def refresh_numba_cache(package_dir: Path) -> bool:
    """Drop the package's numba cache files if any of its sources changed since they were written.

    numba keys a cached function on its own file only, but a kernel inlines helpers
    from sibling modules (``_geom``, ``bvh``, ``winding``): after an edit there, a stale
    cached kernel would keep running the old helper. A digest of all ``*.py`` files of
    the package, stored next to the cache, catches that. Returns True if files were dropped.
    """
    pycache = package_dir / "__pycache__"
    h = hashlib.sha256()
    for src in sorted(package_dir.glob("*.py")):
        h.update(src.name.encode())
        h.update(src.read_bytes())
    digest = h.hexdigest()
    stamp = pycache / "numba-sources.sha256"
    try:
        if stamp.exists() and stamp.read_text().strip() == digest:
            return False
        dropped = False
        for f in list(pycache.glob("*.nbi")) + list(pycache.glob("*.nbc")):
            f.unlink(missing_ok=True)
            dropped = True
        pycache.mkdir(exist_ok=True)
        write_atomic(stamp, lambda p: p.write_text(digest))
        return dropped
    except OSError:  # read-only install: numba falls back to its own cache directory
        return False
