"""`inscene demo` (what `make demo` runs) end to end on a small preset."""

from __future__ import annotations

import re

import pytest
from inscene.engine.store import open_result


@pytest.mark.slow
def test_demo_runs_the_pipeline_and_scores_it(tmp_path, cli):
    r = cli("demo", "-o", str(tmp_path / "demo"), "--preset", "tiny", timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "accuracy against the ground truth" in r.stdout
    assert "real hand detector (not oracle perception)" in r.stdout
    assert re.search(r"object: tracked in \d+/\d+ frames", r.stdout)
    assert "per-stage timings" in r.stdout and re.search(r"throughput [\d.]+ frames/s", r.stdout)
    for stage in ("hands2d", "hands_fit", "object", "window"):
        assert re.search(rf"^\s+{stage}\s+median\s+[\d.]+ ms, mean", r.stdout, re.MULTILINE), stage
    res = open_result(tmp_path / "demo" / "result.zarr")
    assert res.complete and res.finalized_frames > 0
    assert {"hands2d", "hands_fit", "object", "window"} <= set(res.attrs["stages"])
    if res.array("hand/right/valid").any():  # the window's result is scored next to the per-frame fit
        assert re.search(r"MPJPE median [\d.]+ mm \(per-frame fit [\d.]+ mm\)", r.stdout)
        assert re.search(r"contact: \d+ frames detected, \d+ in the ground truth; precision", r.stdout)
    assert str((tmp_path / "demo" / "result.zarr").resolve()) in r.stdout
