"""The sink: writes each packet's row into the result store."""

from __future__ import annotations

import time

import numpy as np

from ..frame import Packet
from ..stage import RunContext, Stage
from ..store.writer import StoreWriter

_IDENTITY = np.eye(4)


class StoreSink(Stage):
    """Writes rows as packets arrive and flushes on count or time.

    Core fields come from the packet itself (time, source index, status,
    revision, timings); stage fields from ``packet.fields``. Replayed packets
    (re-fed on resume to rebuild stage state) are below the watermark and skipped.
    """

    name = "store"
    needs_image = False
    timed = False

    def __init__(self, writer: StoreWriter, timed_stages: list[str]) -> None:
        self.writer = writer
        self.timed_stages = [s for s in timed_stages if writer.has(f"timing/{s}")]
        self.rows_written = 0
        self.seconds = 0.0
        """Time spent writing (puts and flushes), for benchmarks."""

    def setup(self, ctx: RunContext) -> None:
        pass

    def process(self, packet: Packet) -> list[Packet]:
        t0 = time.perf_counter()
        self._write(packet)
        self.seconds += time.perf_counter() - t0
        return []

    def _write(self, packet: Packet) -> None:
        if packet.replay or packet.row < self.writer.watermark:
            return
        values = dict(packet.fields)
        values["frames/time"] = packet.frame.time
        values["frames/source_index"] = packet.frame.index
        values["frames/revision"] = packet.revision
        values.setdefault("camera/T_world_cam", _IDENTITY)
        for s in self.timed_stages:
            if s in packet.timing:
                values[f"timing/{s}"] = packet.timing[s]
        self.writer.put(packet.row, values, packet.status, arrival=packet.frame.arrival)
        self.rows_written += 1
        self.writer.maybe_flush()

    def tick(self) -> list[Packet]:
        t0 = time.perf_counter()
        self.writer.maybe_flush()
        self.seconds += time.perf_counter() - t0
        return []

    def flush(self) -> list[Packet]:
        t0 = time.perf_counter()
        self.writer.flush()
        self.seconds += time.perf_counter() - t0
        return []
