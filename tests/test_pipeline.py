"""The pipeline between a synthetic source and an asserting sink (STYLE.md 8)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from inscene.engine.config import RunConfig
from inscene.engine.frame import Frame, Packet
from inscene.engine.pipeline import Pipeline
from inscene.engine.sources.base import Source, SourceInfo
from inscene.engine.stage import RunContext, Stage
from inscene.engine.store.schema import ArraySpec


class CountingSource(Source):
    """n tiny frames as fast as possible (a test source, not the product's generator)."""

    def __init__(self, n: int, live: bool = False) -> None:
        self.n = n
        self.live = live
        self.closed = threading.Event()

    def open(self) -> SourceInfo:
        self.info = SourceInfo("test:counting", "generator", self.live, 30.0, 8, 6, self.n)
        return self.info

    def frames(self):
        for i in range(self.n):
            if self.closed.is_set():
                return
            yield Frame(i, i / 30, np.full((6, 8, 3), i % 256, np.uint8), time.monotonic())

    def close(self) -> None:
        self.closed.set()


class Collect(Stage):
    """Asserting sink: keeps every packet it gets."""

    name = "collect"
    timed = False

    def __init__(self) -> None:
        self.packets: list[Packet] = []
        self.flushed = False

    def process(self, packet):
        self.packets.append(packet)
        return []

    def flush(self):
        self.flushed = True
        return []


class Sleep(Stage):
    name = "sleep"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def process(self, packet):
        time.sleep(self.seconds)
        return [packet]


class Window(Stage):
    """Holds `size` packets and releases the oldest: the shape of the stage-1 window."""

    name = "window"
    produces = ("smoothed",)

    def __init__(self, size: int) -> None:
        self.size = size
        self.held: list[Packet] = []

    def process(self, packet):
        self.held.append(packet)
        if len(self.held) > self.size:
            p = self.held.pop(0)
            p.data["smoothed"] = True
            return [p]
        return []

    def flush(self):
        out, self.held = self.held, []
        for p in out:
            p.data["smoothed"] = True
        return out


class Boom(Stage):
    name = "boom"

    def __init__(self, at: int) -> None:
        self.at = at

    def process(self, packet):
        if packet.row == self.at:
            raise RuntimeError("synthetic failure")
        return [packet]


def ctx():
    return RunContext(RunConfig(), np.eye(3), None)


def run(source, stages, live=False, qs=4):
    source.open()
    p = Pipeline(source, stages, live=live, queue_size=qs, source_queue_size=qs)
    p.start(ctx())
    p.wait()
    return p


def test_chain_is_checked_before_the_first_frame():
    class NeedsHands(Stage):
        name = "opt"
        consumes = ("hands",)

    with pytest.raises(ValueError, match="consumes \\['hands'\\]"):
        Pipeline.validate([Window(2), NeedsHands()])

    class Writes(Stage):
        def __init__(self, name):
            self.name = name

        def fields(self):
            return [ArraySpec("hand/right/joints", "float32", (21, 3), ("time", "joint", "xyz"), np.nan)]

    with pytest.raises(ValueError, match="written by both"):
        Pipeline.validate([Writes("a"), Writes("b")])


def test_window_stage_releases_everything_in_order_with_timings():
    sink = Collect()
    p = run(CountingSource(50), [Sleep(0.001), Window(5), sink])
    assert [q.row for q in sink.packets] == list(range(50))
    assert all(q.data.get("smoothed") for q in sink.packets)
    assert sink.flushed
    assert all(q.timing["sleep"] >= 0.9 for q in sink.packets)
    assert all("decode" in q.timing and "window" in q.timing for q in sink.packets)
    assert not p.stats.errors and p.dropped == 0


def test_file_sources_never_drop_even_into_a_slow_stage():
    sink = Collect()
    p = run(CountingSource(60), [Sleep(0.002), sink], live=False, qs=2)
    assert [q.frame.index for q in sink.packets] == list(range(60))
    assert p.dropped == 0
    assert max(p.queue_high_water) <= 2


class Burst(Stage):
    """Slow on one frame in ten (as the window's solve), fast otherwise; asks for a burst's worth of queue."""

    name = "burst"
    input_queue = 12

    def process(self, packet):
        if packet.row % 10 == 0:
            time.sleep(0.1)
        return [packet]


def test_a_bursty_stage_gets_its_input_queue_and_upstream_keeps_working():
    sink = Collect()
    p = run(CountingSource(40), [Sleep(0.002), Burst(), sink], qs=2)
    assert [q.maxsize for q in p._queues] == [2, 12, 2]
    assert [q.row for q in sink.packets] == list(range(40))
    # while the burst stage sleeps, the stage before it keeps handing on frames beyond the engine's queue size
    assert 2 < p.queue_high_water[1] <= 12


class Seen(Stage):
    """Records the image size of each packet it gets."""

    def __init__(self, name: str, needs_image: bool) -> None:
        self.name = name
        self.needs_image = needs_image
        self.sizes: list[int] = []

    def process(self, packet):
        self.sizes.append(packet.frame.image.size)
        return [packet]


def test_packets_leave_the_last_stage_reading_pixels_without_them():
    reads, after = Seen("reads", True), Seen("after", False)
    sink = Collect()
    sink.needs_image = False
    run(CountingSource(12), [Seen("first", False), reads, after, sink])
    assert reads.sizes == [6 * 8 * 3] * 12  # everything up to the last stage that reads the image has it
    assert after.sizes == [0] * 12 and all(p.frame.image.size == 0 for p in sink.packets)
    assert [p.frame.index for p in sink.packets] == list(range(12))
    # a sink that may read pixels (the default) keeps them
    sink = Collect()
    run(CountingSource(5), [Seen("a", False), sink])
    assert all(p.frame.image.shape == (6, 8, 3) for p in sink.packets)


def test_live_source_drops_oldest_counts_and_stays_bounded():
    import psutil

    rss0 = psutil.Process().memory_info().rss
    sink = Collect()
    n = 3000
    p = run(CountingSource(n, live=True), [Sleep(0.002), sink], live=True, qs=4)
    got = [q.frame.index for q in sink.packets]
    assert p.dropped > 0 and len(got) + p.dropped == n
    assert got == sorted(got) and got[-1] == n - 1  # the newest frames survive
    assert [q.row for q in sink.packets] == list(range(len(got)))  # rows have no gaps
    assert max(p.queue_high_water) <= 4
    assert psutil.Process().memory_info().rss - rss0 < 50e6


def test_a_failing_stage_stops_the_run_and_downstream_still_gets_its_frames():
    sink = Collect()
    src = CountingSource(10_000)
    p = run(src, [Boom(at=37), Window(3), sink])
    assert len(p.stats.errors) == 1
    msg = str(p.stats.errors[0])
    assert "boom" in msg and "frame 37" in msg and "synthetic failure" in msg
    rows = [q.row for q in sink.packets]
    assert rows[:37] == list(range(37)) and 37 not in rows
    assert src.closed.is_set() and len(rows) < 10_000  # the source was stopped


def test_stop_ends_the_run_cleanly():
    sink = Collect()
    src = CountingSource(10_000_000)
    src.open()
    p = Pipeline(src, [Sleep(0.0005), sink], live=False, queue_size=4, source_queue_size=4)
    p.start(ctx())
    time.sleep(0.2)
    p.stop("SIGINT")
    p.wait()
    rows = [q.row for q in sink.packets]
    assert 0 < len(rows) < 10_000_000 and rows == list(range(len(rows)))
    assert p.stats.stopped_by == "SIGINT" and not p.stats.errors and sink.flushed


def test_downstream_finishes_while_a_stage_closes():
    """The end-of-stream marker goes on before a stage's ``close`` (a worker process takes ~1 s to end): the
    sink has flushed, and every row is through, while the stage before it is still closing."""

    class SlowClose(Stage):
        name = "slow_close"

        def __init__(self) -> None:
            self.closing = threading.Event()
            self.release = threading.Event()

        def close(self) -> None:
            self.closing.set()
            assert self.release.wait(10.0)

    slow, sink = SlowClose(), Collect()
    source = CountingSource(12)
    source.open()
    p = Pipeline(source, [slow, sink], live=False, queue_size=4, source_queue_size=4)
    p.start(ctx())
    assert slow.closing.wait(10.0)
    deadline = time.monotonic() + 10.0
    while not sink.flushed and time.monotonic() < deadline:
        time.sleep(0.01)
    flushed_while_closing = sink.flushed
    slow.release.set()
    p.wait()
    assert flushed_while_closing and [q.row for q in sink.packets] == list(range(12))


def test_each_stage_thread_runs_numba_on_engine_kernel_threads():
    """numba's thread count is per calling thread: every stage thread gets ``engine.kernel_threads`` before
    its setup (1 by default), 0 leaves numba's own default."""
    import numba

    class Threads(Stage):
        name = "threads"

        def setup(self, c):
            self.seen = numba.get_num_threads()

    for k, want in ((1, 1), (0, numba.config.NUMBA_NUM_THREADS)):
        stage = Threads()
        source = CountingSource(2)
        source.open()
        cfg = RunConfig().override([f"engine.kernel_threads={k}"])
        p = Pipeline(source, [stage, Collect()], live=False, queue_size=4, source_queue_size=4)
        p.start(RunContext(cfg, np.eye(3), None))
        p.wait()
        assert stage.seen == want
