"""``inscene bench window``: the optimizer replayed alone reports a finite cost per frame and hand."""

from __future__ import annotations

import math

from synth_fixtures import tiny_scene


def test_window_replay_timing_on_the_tiny_scene(tmp_path_factory, anny_right):
    from inscene.bench.window import time_scene

    res, _ = tiny_scene(tmp_path_factory, anny_right)
    r = time_scene(res.out_dir, 0, repeats=1)
    assert r["hand_frames"] > 0 and r["frames"] == 48
    assert len(r["ms_per_frame_per_hand"]) == 1 and math.isfinite(r["median"]) and r["median"] > 0
    assert r["window"]["size"] == 16 and r["window"]["stride"] == 10
