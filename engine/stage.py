"""The stage contract: one class, fixed hooks, declared inputs and outputs.

A stage declares the packet products it ``consumes`` and ``produces`` and the
store fields it writes (``fields``); the pipeline checks the chain before the
first frame. Its work happens in ``process``, which may hold packets (a window)
and emit them later, so it returns zero or more packets. Stages never call each
other; the pipeline moves packets between them, each stage in its own thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .config import RunConfig
from .frame import Packet
from .store.schema import ArraySpec


@dataclass
class RunContext:
    """What every stage may read during ``setup``: the config, the camera, the source."""

    config: RunConfig
    K: np.ndarray
    source_info: Any
    extras: dict[str, Any] = field(default_factory=dict)


class Stage:
    """Base class of engine stages. Subclasses set ``name``, ``consumes`` and
    ``produces`` and override ``process``; the other hooks are optional."""

    name: ClassVar[str] = "stage"
    consumes: ClassVar[tuple[str, ...]] = ()
    produces: ClassVar[tuple[str, ...]] = ()
    history: int = 0
    """Frames before the resume point this stage needs re-fed to rebuild its state."""
    timed: bool = True
    """Record this stage's per-frame time in ``/timing/<name>``."""
    needs_image: bool = True
    """Reads ``packet.frame.image`` (False: may run in a worker process, :mod:`inscene.engine.worker`)."""
    input_queue: int = 0
    """Packets buffered before this stage at least (0: ``engine.queue_size``). A stage whose work
    comes in bursts (the window solves on one frame in ``stride``) asks for a burst's worth, so the
    stages before it keep working while it solves instead of waiting on a full queue."""

    def fields(self) -> list[ArraySpec]:
        """Per-frame store fields this stage writes (declared before the run)."""
        return []

    def static_fields(self) -> dict[str, np.ndarray]:
        """Static store arrays (e.g. mesh faces) known at setup."""
        return {}

    def setup(self, ctx: RunContext) -> None:
        """Called once, before the first frame, in the stage's own thread."""

    def process(self, packet: Packet) -> list[Packet]:
        """Handle one packet; return the packets to pass downstream (maybe none, maybe older ones)."""
        return [packet]

    def tick(self) -> list[Packet]:
        """Called when no packet arrived for a short while (time-based work)."""
        return []

    def flush(self) -> list[Packet]:
        """End of stream: return every packet still held."""
        return []

    def close(self) -> None:
        """Release resources; called once even after an error."""


def use_stage_threads(config: RunConfig) -> None:
    """Give the calling thread (a stage's) ``engine.kernel_threads`` numba threads; numba's thread count is
    per calling thread, so the pipeline calls this in every stage thread and worker process before setup."""
    n = config.engine.kernel_threads
    if n > 0:
        import numba

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
