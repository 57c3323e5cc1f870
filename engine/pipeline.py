"""The pipeline: a source thread and one thread per stage, joined by bounded queues.

Decoding, inference, optimization and writing overlap: each runs in its own
thread (numpy, torch, numba and zarr's codecs release the GIL for their heavy
work) and hands packets on through a bounded queue, so a slow stage applies
backpressure instead of letting memory grow. A live source feeds the first stage
through a drop-oldest queue instead and counts what it drops.

Ending a run: the source's end, ``stop()`` (SIGINT/SIGTERM) and an error all end
the same way — an end-of-stream marker travels down the chain, each stage
flushes what it holds and the store sink finalizes the store. A failing stage
stops the source, drains its input and passes the marker on without flushing
itself; everything downstream of it is still written.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import InsceneError, SourceError, StageError
from .frame import Frame, Packet, without_pixels
from .queues import BoundedQueue, Closed
from .sources.base import Source
from .stage import RunContext, Stage, use_stage_threads

_EOS = object()
_RESERVED = {"decode", "latency", "source"}
TICK_S = 0.02


@dataclass
class RunStats:
    """Counters shared by the pipeline threads (read by the progress display)."""

    decoded: int = 0
    entered: int = 0
    dropped: int = 0
    started: float = field(default_factory=time.monotonic)
    ready: float | None = None
    """When every stage had finished its setup (the source starts reading then)."""
    last_arrival: float | None = None
    errors: list[InsceneError] = field(default_factory=list)
    source_error: SourceError | None = None
    stopped_by: str | None = None


class Pipeline:
    """Wires a source and a chain of stages; the last stage is the sink."""

    def __init__(self, source: Source, stages: list[Stage], *, live: bool, queue_size: int,
                 source_queue_size: int, first_row: int = 0, replay_rows: int = 0) -> None:
        if not stages:
            raise ValueError("a pipeline needs at least one stage (the sink)")
        self.source = source
        self.stages = stages
        self.live = live
        self.first_row = first_row
        self.replay_rows = replay_rows
        self.stats = RunStats()
        self._stop = threading.Event()
        self._abort = threading.Event()
        self._queues = [BoundedQueue(source_queue_size, drop_oldest=live)]
        self._queues += [BoundedQueue(max(queue_size, s.input_queue)) for s in stages[1:]]
        self._last_image = max((i for i, s in enumerate(stages) if s.needs_image), default=-1)
        """Stages after this one read no pixels: packets leave it without their image (deep queues stay small)."""
        self._threads: list[threading.Thread] = []
        self._ready = [threading.Event() for _ in stages]

    # -- checks -------------------------------------------------------------------

    @staticmethod
    def validate(stages: list[Stage]) -> None:
        """Check the chain before the first frame: every input is produced upstream,
        stage names are unique, and no store field is written by two stages."""
        have = {"frame"}
        names: set[str] = set()
        owners: dict[str, str] = {}
        for s in stages:
            if s.name in _RESERVED:
                raise ValueError(f"stage name '{s.name}' is reserved (timing/{s.name} is written by the engine)")
            if s.name in names:
                raise ValueError(f"two stages are named '{s.name}'")
            names.add(s.name)
            missing = [c for c in s.consumes if c not in have]
            if missing:
                raise ValueError(f"stage '{s.name}' consumes {missing}, which no stage before it produces "
                                 f"(available: {sorted(have)})")
            have.update(s.produces)
            for spec in s.fields():
                if spec.path in owners:
                    raise ValueError(f"store field '{spec.path}' is written by both '{owners[spec.path]}' and '{s.name}'")
                owners[spec.path] = s.name

    # -- running ------------------------------------------------------------------

    def start(self, ctx: RunContext) -> None:
        self.validate(self.stages)
        for i, stage in enumerate(self.stages):
            out = self._queues[i + 1] if i + 1 < len(self.stages) else None
            t = threading.Thread(target=self._stage_loop, args=(i, stage, ctx, self._queues[i], out),
                                 name=f"inscene-{stage.name}", daemon=True)
            self._threads.append(t)
        src = threading.Thread(target=self._source_loop, name="inscene-source", daemon=True)
        self._threads.insert(0, src)
        for t in self._threads:
            t.start()

    def stop(self, reason: str = "stopped") -> None:
        """Stop reading the source; everything read so far is processed and written."""
        if self.stats.stopped_by is None:
            self.stats.stopped_by = reason
        self._stop.set()
        if self.live:  # unblock a waiting read; file sources stop between frames
            self.source.close()

    def abort(self, reason: str = "aborted") -> None:
        """Stop at once: stages skip their flush; the sink still writes what reached it."""
        self._abort.set()
        self.stop(reason)

    def wait(self, poll: Callable[[], None] | None = None, interval: float = 0.1) -> None:
        """Block until every thread has finished, calling ``poll`` every ``interval`` s."""
        while any(t.is_alive() for t in self._threads):
            self._threads[-1].join(interval)
            if poll is not None:
                poll()
        self.stats.dropped = self._queues[0].dropped

    @property
    def dropped(self) -> int:
        return self._queues[0].dropped

    @property
    def queue_high_water(self) -> list[int]:
        return [q.high_water for q in self._queues]

    def _source_loop(self) -> None:
        q = self._queues[0]
        it = None
        try:
            # Stages load their models first: a live source must not drop frames meanwhile.
            for ready in self._ready:
                while not ready.wait(0.05) and not self._stop.is_set():
                    pass
            self.stats.ready = time.monotonic()
            it = iter(self.source.frames())
            while not self._stop.is_set():
                t0 = time.perf_counter()
                try:
                    frame = next(it)
                except StopIteration:
                    break
                decode_ms = (time.perf_counter() - t0) * 1e3
                self.stats.decoded += 1
                try:
                    q.put((frame, decode_ms))
                except Closed:
                    break
                self.stats.dropped = q.dropped
        except SourceError as e:
            if not self._stop.is_set():  # a read cut short by stop() is not an error
                self.stats.source_error = e
        except Exception as e:  # a bug in a source: report it like a stage failure
            self.stats.errors.append(StageError("source", self.stats.decoded, e))
        finally:
            self.stats.dropped = q.dropped
            q.put(_EOS, force=True)
            try:
                self.source.close()
            except Exception:  # noqa: BLE001 - closing must not mask the run's outcome
                pass

    def _stage_loop(self, i: int, stage: Stage, ctx: RunContext, qin: BoundedQueue, qout: BoundedQueue | None) -> None:
        failed = False

        strip = i >= self._last_image

        def emit(packets: list[Packet]) -> None:
            if qout is not None:
                for p in packets:
                    if strip and p.frame.image.size:
                        p.frame = without_pixels(p.frame)
                    qout.put(p)

        def fail(e: BaseException, index: int | None) -> None:
            nonlocal failed
            failed = True
            self.stats.errors.append(e if isinstance(e, InsceneError) else StageError(stage.name, index, e))
            self.stop(f"error in stage '{stage.name}'")

        try:
            use_stage_threads(ctx.config)
            stage.setup(ctx)
        except BaseException as e:  # noqa: BLE001 - reported, run stops cleanly
            fail(e, None)
        finally:
            self._ready[i].set()
        while True:
            try:
                item = qin.get(timeout=TICK_S)
            except TimeoutError:
                if not failed:
                    try:
                        emit(stage.tick())
                    except BaseException as e:  # noqa: BLE001
                        fail(e, None)
                continue
            if item is _EOS:
                if not failed and not (self._abort.is_set() and qout is not None):
                    try:
                        emit(stage.flush())
                    except BaseException as e:  # noqa: BLE001
                        fail(e, None)
                break
            if failed:
                continue  # drain so that upstream is never blocked
            packet = self._intake(item) if i == 0 else item
            t0 = time.perf_counter()
            try:
                out = stage.process(packet)
            except BaseException as e:  # noqa: BLE001
                fail(e, packet.row)
                continue
            if stage.timed:
                packet.timing[stage.name] = packet.timing.get(stage.name, 0.0) + (time.perf_counter() - t0) * 1e3
            emit(out)
        if qout is not None:  # downstream finishes while this stage closes (a worker process takes ~1 s to end)
            qout.put(_EOS, force=True)
        try:
            stage.close()
        except BaseException as e:  # noqa: BLE001
            if not failed:
                fail(e, None)

    def _intake(self, item: tuple[Frame, float]) -> Packet:
        """Give a frame its row (rows count frames that entered, so drops leave no gaps)."""
        frame, decode_ms = item
        row = self.first_row + self.stats.entered
        self.stats.entered += 1
        self.stats.last_arrival = frame.arrival
        return Packet(row=row, frame=frame, timing={"decode": decode_ms},
                      replay=self.stats.entered <= self.replay_rows)
