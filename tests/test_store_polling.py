"""A reader polling a store while another process writes it trusts only finalized rows."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np

from inscene.engine.errors import StoreError
from inscene.engine.store import open_result


def test_reader_polling_a_growing_store_never_sees_fill_or_unfinalized_rows(tmp_path):
    out = tmp_path / "live.zarr"
    n = 1500
    proc = subprocess.Popen([sys.executable, "-m", "inscene.engine.cli.main", "run",
                             f"gen:?frames={n}&size=32x24&fps=600&pace=1&live=0", "-o", str(out), "--no-progress", "--no-hands",
                             "--set", "store.chunk_frames=32", "--set", "store.flush_frames=5"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    marks = []
    deadline = time.monotonic() + 120
    result = None
    while time.monotonic() < deadline:
        running = proc.poll() is None
        try:
            result = result or open_result(out)
        except StoreError:
            time.sleep(0.005)
            continue
        wm = result.refresh()
        t = result.array("frames/time")
        st = result.status
        idx = result.array("frames/source_index")
        lat = result.array("timing/latency")
        assert len(t) <= wm and len(st) <= wm and len(idx) <= wm
        k = min(len(t), len(st), len(idx), len(lat))
        assert (st[:k] == 2).all(), "a non-final row below the watermark"
        np.testing.assert_array_equal(idx[:k], np.arange(k))
        assert np.isfinite(t[:k]).all() and np.isfinite(lat[:k]).all(), "a fill value below the watermark"
        marks.append(wm)
        if not running:
            break
    assert proc.wait(timeout=30) == 0, proc.stderr.read()
    assert marks == sorted(marks), "the watermark went backwards"
    assert len(set(marks)) >= 10, f"watched too few updates: {sorted(set(marks))[:20]}"
    assert open_result(out).finalized_frames == n
