"""When a kernel runs on numba's threads, and how the work is split.

A parallel numba region is a fork-join: it ends when every worker thread has
checked in. On this 2-core machine, when other processes (or the engine's own
decode / store threads) keep the cores busy, a sleeping worker can wait a whole
scheduler time slice to wake: measured 4-12 ms per region, which made a 2.5 ms
lookup of 10^5 SDF points take 8 ms and a 2.4 ms frame take 23 ms. So each kernel
runs on one thread below a work threshold (its serial time is then a few ms), and
above it on all numba threads with dynamically scheduled chunks (a descheduled
worker's share is taken by the others).

``set_parallel_scale(s)`` multiplies every threshold: 0 always uses all threads
(best on an idle machine), ``inf`` never does.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numba

_scale = 1.0


def set_parallel_scale(scale: float) -> float:
    """Set the factor on every kernel's parallel-work threshold; returns the previous one."""
    global _scale
    if not scale >= 0:
        raise ValueError(f"parallel scale must be >= 0 (0: always parallel, inf: never), got {scale}")
    previous, _scale = _scale, float(scale)
    return previous


def get_parallel_scale() -> float:
    return _scale


def use_threads(work: int, min_work: int) -> bool:
    """Whether work of this size should be spread over threads under the current scale."""
    return _scale == 0 or (not math.isinf(_scale) and work >= min_work * _scale)


@contextlib.contextmanager
def launch(work: int, min_work: int, chunk: int) -> Iterator[None]:
    """Run the numba calls in the block on all threads (chunks of ``chunk`` iterations) if ``work >= min_work``
    times the scale, else on the calling thread only."""
    parallel = use_threads(work, min_work)
    previous = numba.get_num_threads()
    if not parallel:
        numba.set_num_threads(1)
    try:
        with numba.parallel_chunksize(chunk):
            yield
    finally:
        numba.set_num_threads(previous)
