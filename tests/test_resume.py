"""Crash and resume: a run killed with SIGKILL and resumed equals an uninterrupted run."""

from __future__ import annotations

import signal
import subprocess
import sys

import numpy as np
import pytest

from inscene.engine.app import JobRequest, run_job
from inscene.engine.config import RunConfig
from inscene.engine.errors import StoreError
from inscene.engine.stage import Stage
from inscene.engine.store import ArraySpec, open_result

from conftest import run_cli, wait_for_final_rows

EXACT = ["frames/time", "frames/source_index", "frames/status", "frames/revision", "camera/T_world_cam"]


def assert_same_store(a, b):
    ra, rb = open_result(a), open_result(b)
    assert ra.complete and rb.complete
    assert ra.finalized_frames == rb.finalized_frames
    assert ra.fields == rb.fields
    for f in ra.fields:
        x, y = ra.array(f), rb.array(f)
        assert x.shape == y.shape, f
        if f.startswith("timing/"):  # measured times differ; every row must hold one
            assert np.isfinite(x).all() and np.isfinite(y).all(), f
        else:
            np.testing.assert_array_equal(x, y, err_msg=f)


def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    uri = "gen:?frames=2400&size=32x24&fps=800&pace=1&live=0"
    flags = ["--no-progress", "--no-hands", "--set", "store.chunk_frames=64"]
    ref = tmp_path / "ref.zarr"
    assert run_cli("run", uri, "-o", str(ref), *flags).returncode == 0
    out = tmp_path / "killed.zarr"
    proc = subprocess.Popen([sys.executable, "-m", "inscene.engine.cli.main", "run", uri, "-o", str(out), *flags],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for_final_rows(out, 700, timeout=60, proc=proc)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.kill()
    proc.wait()
    killed = open_result(out)
    assert killed.state == "running" and 700 <= killed.finalized_frames < 2400
    r = run_cli("run", uri, "-o", str(out), "--resume", *flags)
    assert r.returncode == 0, r.stderr
    assert_same_store(ref, out)
    idx = open_result(out).array("frames/source_index")
    np.testing.assert_array_equal(idx, np.arange(2400))  # no gaps, no duplicates


class RunningMean(Stage):
    """A stage with state over the last 5 frames: resume must rebuild it by replay."""

    name = "mean"
    history = 4

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.recent: list[float] = []

    def fields(self):
        return [ArraySpec("test/mean", "float64", (), ("time",), np.nan)]

    def process(self, packet):
        if packet.frame.index == self.fail_at:
            raise RuntimeError("simulated crash")
        self.recent = (self.recent + [float(packet.frame.image[0, 0, 0])])[-5:]
        packet.fields["test/mean"] = float(np.mean(self.recent))
        return [packet]


def test_resume_replays_stage_history(tmp_path):
    uri = "gen:?frames=300&size=16x12&fps=30"
    cfg = RunConfig().replace("store", chunk_frames=32).replace("source", stride=2)
    ref, out = tmp_path / "ref.zarr", tmp_path / "out.zarr"
    o = run_job(JobRequest(uri, ref, cfg, stage_factory=lambda c, x: [RunningMean()]), progress=False)
    assert o.state == "complete" and o.finalized == 150
    o = run_job(JobRequest(uri, out, cfg, stage_factory=lambda c, x: [RunningMean(fail_at=2 * 97)]), progress=False)
    assert o.state == "failed" and "simulated crash" in str(o.error) and o.finalized == 97
    o = run_job(JobRequest(uri, out, cfg, mode="resume", stage_factory=lambda c, x: [RunningMean()]), progress=False)
    assert o.state == "complete"
    assert_same_store(ref, out)


def test_resume_refuses_another_source_or_config(tmp_path):
    uri = "gen:?frames=50&size=16x12"
    out = tmp_path / "o.zarr"
    run_job(JobRequest(uri, out, RunConfig().replace("source", end=20).replace("hands", enabled=False)), progress=False)
    import json
    meta = json.loads((out / "zarr.json").read_text())
    meta["attributes"]["state"] = "interrupted"
    (out / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="not 'gen:\\?frames=60"):
        run_job(JobRequest("gen:?frames=60&size=16x12", out, RunConfig().replace("hands", enabled=False), mode="resume"),
                progress=False)
    with pytest.raises(StoreError, match="different config"):
        run_job(JobRequest(uri, out, RunConfig(), mode="resume"), progress=False)  # hands on: another config


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_finalizes_the_store_and_exits(tmp_path, sig, code):
    uri = "gen:?frames=3000&size=32x24&fps=500&pace=1&live=0"
    out = tmp_path / "sig.zarr"
    proc = subprocess.Popen([sys.executable, "-m", "inscene.engine.cli.main", "run", uri, "-o", str(out),
                             "--no-progress", "--no-hands"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_final_rows(out, 100, timeout=60)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert "Traceback" not in err and "interrupted" in err
    r = open_result(out)
    assert r.state == "interrupted"
    assert r.finalized_frames == r.attrs["rows"] and 100 <= r.finalized_frames < 3000  # all read frames are final
    idx = r.array("frames/source_index")
    np.testing.assert_array_equal(idx, np.arange(len(idx)))
