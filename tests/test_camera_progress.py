from __future__ import annotations

import json
import math

import numpy as np
import pytest

from inscene.engine.camera import default_K, parse_intrinsics
from inscene.engine.errors import ConfigError
from inscene.engine.pipeline import RunStats
from inscene.engine.progress import ProgressDisplay
from inscene.engine.sources.base import SourceInfo


def test_default_K_matches_the_field_of_view():
    K = default_K(640, 480, 90.0)
    assert K[0, 0] == pytest.approx(320.0) and K[1, 1] == K[0, 0]
    assert (K[0, 2], K[1, 2]) == (319.5, 239.5)  # pixel centres at integer coordinates
    # the right edge of the image (x = W - 0.5) is 45 degrees off axis
    assert math.degrees(math.atan((639.5 - K[0, 2]) / K[0, 0])) == pytest.approx(45.0)


def test_intrinsics_from_flag_and_files(tmp_path):
    assert parse_intrinsics("600,610,320,240") == (600.0, 610.0, 320.0, 240.0)
    (tmp_path / "k.json").write_text(json.dumps({"fx": 500, "fy": 501, "cx": 300, "cy": 200}))
    assert parse_intrinsics(str(tmp_path / "k.json")) == (500.0, 501.0, 300.0, 200.0)
    K = np.array([[700.0, 0, 330], [0, 705, 250], [0, 0, 1]])
    np.savetxt(tmp_path / "k.txt", K)
    assert parse_intrinsics(str(tmp_path / "k.txt")) == (700.0, 705.0, 330.0, 250.0)
    np.save(tmp_path / "k.npy", K)
    assert parse_intrinsics(str(tmp_path / "k.npy"))[1] == 705.0
    with pytest.raises(ConfigError, match="missing.json"):
        parse_intrinsics(str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError):
        parse_intrinsics("600,0,320,240")


class _W:
    watermark = 0


def test_progress_line_reports_frames_fps_lag_drops_and_eta():
    stats = RunStats()
    w = _W()
    file_info = SourceInfo("v.mp4", "file", False, 30.0, 64, 48, 300)
    d = ProgressDisplay(file_info, stats, w, enabled=False, live=False)
    stats.decoded, w.watermark = 120, 100
    line = d.line()
    assert "frames 100/300" in line and "lag 20 frames" in line and "ETA" in line and "fps" in line
    live_info = SourceInfo("rtsp://x", "stream", True, 30.0, 64, 48, None)
    d = ProgressDisplay(live_info, stats, w, enabled=False, live=True)
    stats.dropped = 7
    import time
    stats.last_arrival = time.monotonic() - 0.5
    line = d.line()
    assert "dropped 7" in line and "lag 0.5" in line and "ETA" not in line
