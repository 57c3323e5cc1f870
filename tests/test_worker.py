"""A stage in a worker process behaves as the same stage in a thread: same packets out, in the same order,
frames given back, errors reported with the child's traceback, a dead child reported, not hung on.

The end-to-end case (the window in a worker equals the offline pass) is in ``test_window_stream.py``.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import wait_for_final_rows
from inscene.engine.app import JobRequest, run_job
from inscene.engine.config import RunConfig
from inscene.engine.errors import InputError
from inscene.engine.frame import Frame, Packet
from inscene.engine.stage import RunContext, Stage
from inscene.engine.store.schema import ArraySpec
from inscene.engine.worker import WorkerError, WorkerStage


class Lagging(Stage):
    """Holds packets and lets each go ``lag`` packets later with a running sum of the rows seen so far."""

    name = "lagging"
    produces = ("running",)
    needs_image = False

    def __init__(self, lag: int = 2, fail_at: int | None = None, die_at: int | None = None) -> None:
        self.lag, self.fail_at, self.die_at = lag, fail_at, die_at
        self.held: list[Packet] = []
        self.total = 0
        self.pid = 0

    def fields(self) -> list[ArraySpec]:
        return [ArraySpec("running/total", "int64", (), ("time",), -1, doc="sum of the rows seen")]

    def setup(self, ctx: RunContext) -> None:
        self.pid = os.getpid()

    def process(self, packet: Packet) -> list[Packet]:
        if packet.row == self.fail_at:
            raise ValueError(f"row {packet.row} is bad")
        if packet.row == self.die_at:
            os._exit(3)
        self.total += packet.row
        packet.data["running"] = (self.total, self.pid)
        packet.fields["running/total"] = np.int64(self.total)
        self.held.append(packet)
        out, self.held = self.held[:-self.lag] if len(self.held) > self.lag else [], self.held[-self.lag:]
        return out

    def flush(self) -> list[Packet]:
        out, self.held = self.held, []
        return out


class NeedsImage(Stage):
    name = "image"


class BadInput(Lagging):
    def process(self, packet: Packet) -> list[Packet]:
        raise InputError("frame 0", "cannot be used", "give another")


def _packets(n: int) -> list[Packet]:
    return [Packet(row=i, frame=Frame(i, i / 30, np.full((4, 6, 3), i, np.uint8), 0.0)) for i in range(n)]


def _ctx() -> RunContext:
    return RunContext(RunConfig(), np.eye(3), None)


def _drive(stage: Stage, packets: list[Packet]) -> list[Packet]:
    stage.setup(_ctx())
    try:
        out = []
        for p in packets:
            out += stage.process(p)
        return out + stage.flush()
    finally:
        stage.close()


def test_a_worker_stage_gives_what_the_stage_gives_in_a_thread():
    packets = _packets(9)
    local = _drive(Lagging(), _packets(9))
    worker = WorkerStage(Lagging(), Lagging)
    remote = _drive(worker, packets)
    assert [p.row for p in remote] == [p.row for p in local] == list(range(9))
    assert [p.fields["running/total"] for p in remote] == [p.fields["running/total"] for p in local]
    # the work ran in another process, and each packet got its own frame (with its pixels) back
    assert {p.data["running"][1] for p in remote} != {os.getpid()}
    for p in remote:
        assert p is packets[p.row] and p.frame.image.shape == (4, 6, 3)
    assert worker.fields() == Lagging().fields() and worker.name == "lagging"


def test_an_error_in_the_worker_comes_back_with_its_traceback():
    worker = WorkerStage(Lagging(fail_at=3), Lagging, 2, 3)
    worker.setup(_ctx())
    try:
        for p in _packets(3):
            worker.process(p)
        with pytest.raises(WorkerError, match=r"ValueError: row 3 is bad(.|\n)*in the worker process(.|\n)*process"):
            worker.process(_packets(4)[3])
        assert [p.row for p in worker.flush()] == [1, 2]  # the worker still serves after the error
    finally:
        worker.close()


def test_an_input_error_in_the_worker_keeps_its_one_line_message():
    worker = WorkerStage(BadInput(), BadInput)
    worker.setup(_ctx())
    try:
        with pytest.raises(InputError, match="frame 0: cannot be used"):
            worker.process(_packets(1)[0])
    finally:
        worker.close()


def test_a_worker_that_dies_is_reported_not_waited_for():
    worker = WorkerStage(Lagging(die_at=1), Lagging, 2, None, 1)
    worker.setup(_ctx())
    try:
        worker.process(_packets(1)[0])
        with pytest.raises(WorkerError, match=r"ended unexpectedly \(exit code 3\)"):
            worker.process(_packets(2)[1])
    finally:
        worker.close()


def test_a_stage_that_reads_the_image_is_refused():
    with pytest.raises(ValueError, match="reads the image"):
        WorkerStage(NeedsImage(), NeedsImage)


def test_a_pipeline_with_a_worker_stage_writes_every_row(tmp_path):
    out = tmp_path / "w.zarr"
    cfg = RunConfig().replace("hands", enabled=False).replace("engine", progress=False)
    o = run_job(JobRequest("gen:?frames=40&size=32x24", out, cfg,
                           stage_factory=lambda c, x: [WorkerStage(Lagging(5), Lagging, 5)]), progress=False)
    assert o.state == "complete" and o.finalized == 40
    from inscene.engine import open_result

    res = open_result(out)
    np.testing.assert_array_equal(res.array("running/total", 40), np.cumsum(np.arange(40)))


def test_a_failing_worker_stage_stops_the_run_cleanly(tmp_path):
    out = tmp_path / "f.zarr"
    cfg = RunConfig().replace("hands", enabled=False).replace("engine", progress=False)
    o = run_job(JobRequest("gen:?frames=40&size=32x24", out, cfg,
                           stage_factory=lambda c, x: [WorkerStage(Lagging(2, 20), Lagging, 2, 20)]), progress=False)
    assert o.state == "failed" and "row 20 is bad" in str(o.error)
    assert 0 < o.finalized <= 20


def test_ctrl_c_to_the_process_group_finalizes_a_run_with_a_worker_stage(tmp_path):
    """Ctrl-C reaches the worker too (same process group): it ignores it, the parent stops reading, every frame
    read goes through the worker and the store is finalized as interrupted (exit 130)."""
    out = tmp_path / "int.zarr"
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_worker import Lagging
        from inscene.engine.app import JobRequest, run_job
        from inscene.engine.config import RunConfig
        from inscene.engine.worker import WorkerStage

        if __name__ == "__main__":
            cfg = RunConfig().replace("hands", enabled=False).replace("engine", progress=False)
            job = JobRequest("gen:?frames=3000&size=32x24&fps=500&pace=1&live=0", {str(out)!r}, cfg,
                             stage_factory=lambda c, x: [WorkerStage(Lagging(3), Lagging, 3)])
            outcome = run_job(job, progress=False)
            print(outcome.state, outcome.error, file=sys.stderr)
            sys.exit(outcome.exit_code)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.PIPE, text=True, start_new_session=True)
    from inscene.engine import open_result

    wait_for_final_rows(out, 100, timeout=120, proc=proc)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted None" in err
    r = open_result(out)
    assert r.state == "interrupted"
    assert r.finalized_frames == r.attrs["rows"] and 100 <= r.finalized_frames < 3000
    np.testing.assert_array_equal(r.array("running/total", r.finalized_frames),
                                  np.cumsum(np.arange(r.finalized_frames)))


def test_a_script_without_a_main_guard_runs_a_job_with_a_worker_stage(tmp_path):
    """The worker is a fresh interpreter, not a multiprocessing spawn: the caller's script is not run again in it."""
    out = tmp_path / "noguard.zarr"
    script = tmp_path / "noguard.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_worker import Lagging
        from inscene.engine.app import JobRequest, run_job
        from inscene.engine.config import RunConfig
        from inscene.engine.worker import WorkerStage

        cfg = RunConfig().replace("hands", enabled=False).replace("engine", progress=False)
        job = JobRequest("gen:?frames=30&size=32x24", {str(out)!r}, cfg,
                         stage_factory=lambda c, x: [WorkerStage(Lagging(3), Lagging, 3)])
        outcome = run_job(job, progress=False)
        print(outcome.state, outcome.error)
        sys.exit(outcome.exit_code)
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "complete None" in done.stdout, done.stderr
    from inscene.engine import open_result

    assert open_result(out).finalized_frames == 30


def test_a_stage_without_time_based_work_is_not_asked_to_tick():
    """The pipeline ticks idle stages every 20 ms; a worker stage whose stage has no ``tick`` answers at once
    (here before any child exists: a round trip would fail with 'not running')."""
    assert WorkerStage(Lagging(), Lagging).tick() == []


class Threads(Lagging):
    """Reports numba's thread count in the worker process and the process's exit code on close."""

    def setup(self, ctx: RunContext) -> None:
        import numba

        super().setup(ctx)
        self.threads = numba.get_num_threads()

    def process(self, packet: Packet) -> list[Packet]:
        out = super().process(packet)
        packet.data["running"] = (self.threads, self.pid)
        return out


def test_the_worker_runs_numba_on_engine_kernel_threads_and_ends_at_close():
    import numba

    for k, want in ((1, 1), (0, numba.config.NUMBA_NUM_THREADS)):
        worker = WorkerStage(Threads(), Threads)
        worker.setup(RunContext(RunConfig().override([f"engine.kernel_threads={k}"]), np.eye(3), None))
        proc = worker._proc
        try:
            out = worker.process(_packets(1)[0]) + worker.flush()
        finally:
            worker.close()
        assert out[0].data["running"][0] == want
        assert proc.returncode == 0  # ended at once after answering 'close', cleanly


def test_tensors_cross_the_pipe_as_numpy_arrays_and_come_back_equal():
    import torch

    from inscene.engine.worker import dumps

    x = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    parts = {"plain": x, "view": x.t(), "int": torch.tensor([3, 1], dtype=torch.int64),
             "grad": torch.ones(2, requires_grad=True), "bf16": torch.ones(3, dtype=torch.bfloat16)}
    back = pickle.loads(dumps(parts))
    for k, v in parts.items():
        assert type(back[k]) is torch.Tensor and back[k].dtype == v.dtype and back[k].shape == v.shape, k
        assert torch.equal(back[k].detach(), v.detach()), k
    assert back["grad"].requires_grad  # torch's own pickling kept it
    back["plain"][0, 0] = 7.0  # a copy, writable, not the sender's memory
    assert x[0, 0] == 0.0
