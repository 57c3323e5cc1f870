"""Long runs keep memory flat: 10 000 generated frames through the engine and store."""

from __future__ import annotations

import numpy as np
import psutil

from inscene.engine.app import JobRequest, run_job
from inscene.engine.config import RunConfig
from inscene.engine.stage import Stage
from inscene.engine.store import ArraySpec, open_result


class RssProbe(Stage):
    """Samples the process's RSS every 500 frames and writes a small per-frame field."""

    name = "probe"

    def __init__(self) -> None:
        self.rss: dict[int, int] = {}

    def fields(self):
        return [ArraySpec("test/joints", "float32", (21, 3), ("time", "joint", "xyz"), np.nan)]

    def process(self, packet):
        if packet.row % 500 == 0:
            self.rss[packet.row] = psutil.Process().memory_info().rss
        packet.fields["test/joints"] = np.full((21, 3), packet.row, np.float32)
        return [packet]


def test_ten_thousand_frames_keep_rss_flat(tmp_path):
    probe = RssProbe()
    out = tmp_path / "long.zarr"
    o = run_job(JobRequest("gen:?frames=10000&size=96x72", out, RunConfig(), stage_factory=lambda c, x: [probe]),
                progress=False)
    assert o.state == "complete" and o.finalized == 10000
    early = np.median([probe.rss[r] for r in (1500, 2000, 2500)])
    late = np.median([probe.rss[r] for r in (8500, 9000, 9500)])
    assert late - early < 8e6, f"RSS grew {(late - early) / 1e6:.1f} MB between frames 2000 and 9000"
    r = open_result(out)
    assert r.finalized_frames == 10000 and r.array("test/joints", start=9990)[:, 0, 0].tolist() == list(range(9990, 10000))
